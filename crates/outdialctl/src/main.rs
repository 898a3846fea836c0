//! `outdialctl`: the operator CLI (SPEC §11). See `outdialctl --help`.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    outdialctl::main().await
}
