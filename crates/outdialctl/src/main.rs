//! `outdialctl`: the operator CLI (product §11). See `outdialctl --help`.

/// The allocator of every outdial binary (workspace `Cargo.toml`: glibc malloc cost ~15 % of
/// the fleet's CPU under load).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    outdialctl::main().await
}
