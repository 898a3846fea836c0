//! Slot allocation across organizations (product §4 "Allocation").
//!
//! Each dispatch cycle has `free = global_limit − active_total` slots. Organizations with
//! due contacts and room share them in proportion to their `concurrency_limit`, each capped
//! by its room (`limit − active`) and its demand; slots an organization cannot use are
//! re-offered to the others (water-filling); whole slots go out by floor, leftovers one at a
//! time to the largest fractional shares, ties to the lower org id.
//!
//! Worked example (product §4): free 10, A (limit 10, active 0), B (limit 30, active 28) →
//! ideal A 2.5, B 7.5 → B capped at its room 2 → A gets 8, B gets 2.

use serde::{Deserialize, Serialize};

use crate::ids::OrgId;

/// One organization's input to an allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgDemand {
    /// The organization; leftover slots tie-break to the lower id.
    pub org_id: OrgId,
    /// Its `concurrency_limit` (the proportional weight and the cap on active calls).
    pub limit: u32,
    /// Its active calls now (contacts `locked` or `dialing`).
    pub active: u32,
    /// How many due contacts it could start now.
    pub demand: u32,
}

impl OrgDemand {
    /// Slots it can still take: `limit − active`, never negative.
    pub fn room(&self) -> u32 {
        self.limit.saturating_sub(self.active)
    }

    /// Most it can receive: `min(room, demand)`.
    pub fn cap(&self) -> u32 {
        self.room().min(self.demand)
    }
}

/// Allocates `free` slots among `orgs` (product §4). Returns one count per input org, in input
/// order.
///
/// Guarantees (property-tested): no org gets more than its [`OrgDemand::cap`]; the total is
/// `min(free, Σ cap)`; an org that is not capped gets its proportional share of what the
/// capped ones left, within one slot.
pub fn allocate(free: u32, orgs: &[OrgDemand]) -> Vec<u32> {
    let mut alloc = vec![0u32; orgs.len()];
    // Water-filling on the exact (rational) shares: fix every org whose share reaches its
    // cap at that cap, re-offer the rest to the others, until no share reaches a cap.
    let mut open: Vec<usize> = (0..orgs.len())
        .filter(|&i| orgs[i].cap() > 0 && orgs[i].limit > 0)
        .collect();
    let mut remaining = u64::from(free);
    loop {
        let weight: u64 = open.iter().map(|&i| u64::from(orgs[i].limit)).sum();
        if open.is_empty() || remaining == 0 || weight == 0 {
            return alloc;
        }
        // share_i = remaining · limit_i / weight ≥ cap_i  ⇔  remaining · limit_i ≥ cap_i · weight
        let (capped, uncapped): (Vec<usize>, Vec<usize>) = open.iter().partition(|&&i| {
            remaining * u64::from(orgs[i].limit) >= u64::from(orgs[i].cap()) * weight
        });
        if capped.is_empty() {
            break;
        }
        for i in capped {
            alloc[i] = orgs[i].cap();
            remaining -= u64::from(orgs[i].cap());
        }
        open = uncapped;
    }

    // Nobody left reaches its cap: floors first, then leftovers by largest remainder.
    let weight: u64 = open.iter().map(|&i| u64::from(orgs[i].limit)).sum();
    let mut given = 0u64;
    let mut remainders: Vec<(u64, OrgId, usize)> = Vec::with_capacity(open.len());
    for &i in &open {
        let numerator = remaining * u64::from(orgs[i].limit);
        let floor = numerator / weight;
        alloc[i] = u32::try_from(floor).unwrap_or(u32::MAX);
        given += floor;
        remainders.push((numerator % weight, orgs[i].org_id, i));
    }
    // Largest remainder first; ties to the lower org id.
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let leftover = remaining - given;
    for &(_, _, i) in remainders
        .iter()
        .take(usize::try_from(leftover).unwrap_or(usize::MAX))
    {
        // share < cap for every open org, so floor + 1 ≤ cap.
        alloc[i] += 1;
    }
    alloc
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn org(id: i64, limit: u32, active: u32, demand: u32) -> OrgDemand {
        OrgDemand {
            org_id: OrgId(id),
            limit,
            active,
            demand,
        }
    }

    #[test]
    fn spec_worked_example() {
        let orgs = [org(1, 10, 0, 1000), org(2, 30, 28, 1000)];
        assert_eq!(allocate(10, &orgs), vec![8, 2]);
    }

    #[test]
    fn proportional_when_nobody_is_capped() {
        let orgs = [org(1, 10, 0, 100), org(2, 30, 0, 100)];
        assert_eq!(allocate(20, &orgs), vec![5, 15]);
    }

    #[test]
    fn leftover_to_largest_remainder_then_lower_id() {
        // free 10 over three equal orgs: 3.33 each → floors 3,3,3, leftover 1 → org 1.
        let orgs = [org(3, 10, 0, 50), org(1, 10, 0, 50), org(2, 10, 0, 50)];
        assert_eq!(allocate(10, &orgs), vec![3, 4, 3]);
        // limits 1 and 2 with free 2: shares 0.67 and 1.33 → floors 0,1; leftover → org 1.
        let orgs = [org(1, 1, 0, 5), org(2, 2, 0, 5)];
        assert_eq!(allocate(2, &orgs), vec![1, 1]);
    }

    #[test]
    fn demand_caps_and_rest_is_reoffered() {
        let orgs = [org(1, 10, 0, 1), org(2, 10, 0, 100)];
        assert_eq!(allocate(10, &orgs), vec![1, 9]);
    }

    #[test]
    fn nothing_free_or_no_demand() {
        assert_eq!(allocate(0, &[org(1, 10, 0, 5)]), vec![0]);
        assert_eq!(
            allocate(5, &[org(1, 10, 10, 5), org(2, 10, 0, 0)]),
            vec![0, 0]
        );
        assert_eq!(allocate(5, &[]), Vec::<u32>::new());
    }

    fn orgs_strategy() -> impl Strategy<Value = Vec<OrgDemand>> {
        prop::collection::vec((1u32..=10_000, 0u32..=10_000, 0u32..=2_000), 0..40).prop_map(|v| {
            v.into_iter()
                .enumerate()
                .map(|(i, (limit, active, demand))| {
                    org(i as i64 + 1, limit, active.min(limit + 5), demand)
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn never_above_any_cap(free in 0u32..20_000, orgs in orgs_strategy()) {
            let alloc = allocate(free, &orgs);
            prop_assert_eq!(alloc.len(), orgs.len());
            for (a, o) in alloc.iter().zip(&orgs) {
                prop_assert!(*a <= o.cap(), "org {:?} got {} > cap {}", o.org_id, a, o.cap());
            }
        }

        #[test]
        fn total_is_min_of_free_and_caps(free in 0u32..20_000, orgs in orgs_strategy()) {
            let alloc = allocate(free, &orgs);
            let total: u64 = alloc.iter().map(|&a| u64::from(a)).sum();
            let caps: u64 = orgs.iter().map(|o| u64::from(o.cap())).sum();
            prop_assert_eq!(total, u64::from(free).min(caps));
        }

        #[test]
        fn uncapped_orgs_get_their_share_within_one_slot(free in 0u32..20_000, orgs in orgs_strategy()) {
            let alloc = allocate(free, &orgs);
            // Orgs below their cap are the ones the water level did not reach; what they
            // shared is `free` minus what the capped orgs took.
            let uncapped: Vec<usize> = (0..orgs.len()).filter(|&i| alloc[i] < orgs[i].cap()).collect();
            let taken_by_capped: u64 = (0..orgs.len()).filter(|i| !uncapped.contains(i)).map(|i| u64::from(alloc[i])).sum();
            let pool = u64::from(free) - taken_by_capped;
            let weight: u64 = uncapped.iter().map(|&i| u64::from(orgs[i].limit)).sum();
            for &i in &uncapped {
                let ideal = pool as f64 * f64::from(orgs[i].limit) / weight as f64;
                prop_assert!((f64::from(alloc[i]) - ideal).abs() < 1.0 + 1e-9,
                    "org {:?}: got {} ideal {}", orgs[i].org_id, alloc[i], ideal);
            }
        }

        #[test]
        fn no_slot_idles_while_an_org_has_room_and_demand(free in 0u32..20_000, orgs in orgs_strategy()) {
            let alloc = allocate(free, &orgs);
            let total: u32 = alloc.iter().sum();
            if total < free {
                for (a, o) in alloc.iter().zip(&orgs) {
                    prop_assert_eq!(*a, o.cap());
                }
            }
        }
    }
}
