//! Where a hold's units come from (docs/architecture.md, "Stock and holds"): only warehouses that ship to
//! the country; one warehouse for the whole hold where possible, else the fewest, then by priority;
//! a line may be split across warehouses. All or nothing for lines that may not oversell.
//!
//! Pure functions over a snapshot of the locked stock rows, so the rules are tested without a database.

use std::collections::BTreeMap;

/// What a hold asks of one item: its lines merged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Need {
    /// The inventory item.
    pub item: String,
    /// Units wanted.
    pub quantity: i64,
    /// Whether units beyond the stock may be promised.
    pub oversell: bool,
}

/// A warehouse that ships to the hold's country, with what it has available per item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The warehouse.
    pub warehouse: String,
    /// Lower is preferred.
    pub priority: i32,
    /// Units available (on hand less reserved) per item.
    pub available: BTreeMap<String, i64>,
}

/// Units of one item set aside in one warehouse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allocation {
    /// The inventory item.
    pub item: String,
    /// The warehouse; empty for an oversold remainder that no warehouse carries.
    pub warehouse: String,
    /// Units taken from stock.
    pub quantity: i64,
    /// Units promised beyond the stock.
    pub oversold: i64,
}

/// A line that cannot be filled and may not oversell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shortage {
    /// The inventory item.
    pub item: String,
    /// Units asked for.
    pub requested: i64,
    /// Units available in the warehouses that ship to the country.
    pub available: i64,
}

/// Above this many candidate warehouses, the fewest-warehouses search is greedy instead of exact.
const EXACT_SEARCH_LIMIT: usize = 12;

/// Allocates `needs` from `candidates`, or names every line that is short and may not oversell.
pub fn allocate(needs: &[Need], candidates: &[Candidate]) -> Result<Vec<Allocation>, Vec<Shortage>> {
    let mut candidates: Vec<&Candidate> = candidates.iter().collect();
    candidates.sort_by(|a, b| (a.priority, &a.warehouse).cmp(&(b.priority, &b.warehouse)));
    let available_of = |c: &Candidate, item: &str| c.available.get(item).copied().unwrap_or(0).max(0);

    let mut shortages = Vec::new();
    let mut targets: Vec<(&Need, i64)> = Vec::new();
    for need in needs {
        let total: i64 = candidates.iter().map(|c| available_of(c, &need.item)).sum();
        if total < need.quantity && !need.oversell {
            shortages.push(Shortage { item: need.item.clone(), requested: need.quantity, available: total });
        }
        targets.push((need, need.quantity.min(total)));
    }
    if !shortages.is_empty() {
        return Err(shortages);
    }

    let covers = |chosen: &[&Candidate]| {
        targets.iter().all(|(need, target)| chosen.iter().map(|c| available_of(c, &need.item)).sum::<i64>() >= *target)
    };
    let chosen = fewest_covering(&candidates, covers, &targets);

    let mut allocations = Vec::new();
    for (need, target) in &targets {
        let mut left = *target;
        let mut first_index = None;
        for candidate in &chosen {
            if left == 0 {
                break;
            }
            let take = available_of(candidate, &need.item).min(left);
            if take > 0 {
                first_index.get_or_insert(allocations.len());
                allocations.push(Allocation {
                    item: need.item.clone(),
                    warehouse: candidate.warehouse.clone(),
                    quantity: take,
                    oversold: 0,
                });
                left -= take;
            }
        }
        let shortfall = need.quantity - target;
        if shortfall > 0 {
            // The remainder is promised from where the line is already held, else the preferred
            // warehouse, else nowhere yet.
            match first_index {
                Some(index) => allocations[index].oversold = shortfall,
                None => allocations.push(Allocation {
                    item: need.item.clone(),
                    warehouse: candidates.first().map(|c| c.warehouse.clone()).unwrap_or_default(),
                    quantity: 0,
                    oversold: shortfall,
                }),
            }
        }
    }
    Ok(allocations)
}

/// The fewest candidates (in priority order) that cover every target: an exhaustive search by
/// increasing size for a few candidates, a greedy one beyond.
fn fewest_covering<'a>(
    candidates: &[&'a Candidate],
    covers: impl Fn(&[&Candidate]) -> bool,
    targets: &[(&Need, i64)],
) -> Vec<&'a Candidate> {
    if covers(&[]) {
        return Vec::new();
    }
    if candidates.len() <= EXACT_SEARCH_LIMIT {
        for size in 1..=candidates.len() {
            let mut indices: Vec<usize> = (0..size).collect();
            loop {
                let chosen: Vec<&Candidate> = indices.iter().map(|&i| candidates[i]).collect();
                if covers(&chosen) {
                    return indices.iter().map(|&i| candidates[i]).collect();
                }
                if !next_combination(&mut indices, candidates.len()) {
                    break;
                }
            }
        }
        return candidates.to_vec();
    }
    let mut chosen = greedy_covering(candidates, targets);
    chosen.sort_by(|a, b| (a.priority, &a.warehouse).cmp(&(b.priority, &b.warehouse)));
    chosen
}

/// Rounds of the greedy search; a hold that needs more warehouses than this takes the rest in
/// priority order, so its cost stays a few passes over the stock it read.
const GREEDY_ROUNDS: usize = 32;

/// Takes, round after round, the candidate that covers the most units still wanted (ties to the
/// preferred priority, then id). Coverage only shrinks as candidates are taken, so a candidate's
/// last count is a bound: only the one on top is counted again (a lazy greedy, choosing what the
/// plain one would), and each count reads only the items the candidate has.
fn greedy_covering<'a>(candidates: &[&'a Candidate], targets: &[(&Need, i64)]) -> Vec<&'a Candidate> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    let mut left: Vec<i64> = targets.iter().map(|(_, target)| *target).collect();
    // Per candidate, the lines it has units of, and how many.
    let stock: Vec<Vec<(usize, i64)>> = candidates
        .iter()
        .map(|c| {
            targets
                .iter()
                .enumerate()
                .filter_map(|(line, (need, _))| {
                    let units = c.available.get(&need.item).copied().unwrap_or(0);
                    (units > 0).then_some((line, units))
                })
                .collect()
        })
        .collect();
    let gain =
        |index: usize, left: &[i64]| stock[index].iter().map(|&(line, units)| units.min(left[line])).sum::<i64>();
    let key =
        |index: usize, gain: i64| (gain, Reverse((candidates[index].priority, &candidates[index].warehouse)), index);

    let mut heap: BinaryHeap<_> =
        (0..candidates.len()).map(|i| key(i, gain(i, &left))).filter(|(gain, _, _)| *gain > 0).collect();
    let mut taken = vec![false; candidates.len()];
    let mut chosen = Vec::new();
    let mut take = |index: usize, left: &mut [i64], taken: &mut [bool]| {
        for &(line, units) in &stock[index] {
            left[line] -= units.min(left[line]);
        }
        taken[index] = true;
        chosen.push(candidates[index]);
    };
    let mut rounds = 0;
    while rounds < GREEDY_ROUNDS && left.iter().any(|l| *l > 0) {
        let Some((_, _, index)) = heap.pop() else { break };
        let now = gain(index, &left);
        if now == 0 {
            continue;
        }
        let current = key(index, now);
        if heap.peek().is_some_and(|next| *next > current) {
            heap.push(current);
            continue;
        }
        take(index, &mut left, &mut taken);
        rounds += 1;
    }
    for index in 0..candidates.len() {
        if !left.iter().any(|l| *l > 0) {
            break;
        }
        if !taken[index] && gain(index, &left) > 0 {
            take(index, &mut left, &mut taken);
        }
    }
    chosen
}

/// Advances `indices` to the next k-combination of 0..n in lexicographic order.
fn next_combination(indices: &mut [usize], n: usize) -> bool {
    let k = indices.len();
    for i in (0..k).rev() {
        if indices[i] < n - k + i {
            indices[i] += 1;
            for j in i + 1..k {
                indices[j] = indices[j - 1] + 1;
            }
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn need(item: &str, quantity: i64) -> Need {
        Need { item: item.into(), quantity, oversell: false }
    }

    fn candidate(warehouse: &str, priority: i32, stock: &[(&str, i64)]) -> Candidate {
        Candidate {
            warehouse: warehouse.into(),
            priority,
            available: stock.iter().map(|(item, n)| ((*item).to_owned(), *n)).collect(),
        }
    }

    fn warehouses_used(allocations: &[Allocation]) -> Vec<String> {
        let mut used: Vec<String> =
            allocations.iter().filter(|a| a.quantity > 0).map(|a| a.warehouse.clone()).collect();
        used.sort();
        used.dedup();
        used
    }

    #[test]
    fn one_warehouse_filling_everything_wins_over_a_preferred_partial_one() {
        let candidates = [candidate("near", 0, &[("a", 5)]), candidate("far", 9, &[("a", 5), ("b", 5)])];
        let allocations = allocate(&[need("a", 2), need("b", 2)], &candidates).expect("filled");
        assert_eq!(warehouses_used(&allocations), ["far"]);
    }

    #[test]
    fn among_single_warehouses_the_preferred_priority_wins() {
        let candidates = [candidate("b", 2, &[("a", 5)]), candidate("a", 1, &[("a", 5)])];
        let allocations = allocate(&[need("a", 3)], &candidates).expect("filled");
        assert_eq!(allocations, [Allocation { item: "a".into(), warehouse: "a".into(), quantity: 3, oversold: 0 }]);
    }

    #[test]
    fn a_line_is_split_when_no_warehouse_has_enough() {
        let candidates = [candidate("w1", 1, &[("a", 3)]), candidate("w2", 2, &[("a", 4)])];
        let allocations = allocate(&[need("a", 6)], &candidates).expect("filled");
        assert_eq!(allocations.iter().map(|a| a.quantity).sum::<i64>(), 6);
        assert_eq!(allocations[0].warehouse, "w1");
        assert_eq!(allocations[0].quantity, 3);
    }

    #[test]
    fn every_short_line_is_named_and_nothing_is_allocated() {
        let candidates = [candidate("w", 0, &[("a", 1), ("b", 10)])];
        let shortages = allocate(&[need("a", 2), need("b", 3), need("c", 1)], &candidates).expect_err("short");
        assert_eq!(
            shortages,
            [
                Shortage { item: "a".into(), requested: 2, available: 1 },
                Shortage { item: "c".into(), requested: 1, available: 0 },
            ]
        );
    }

    #[test]
    fn an_oversold_line_holds_what_exists_and_records_the_shortfall() {
        let candidates = [candidate("w", 0, &[("a", 2)])];
        let allocations =
            allocate(&[Need { item: "a".into(), quantity: 5, oversell: true }], &candidates).expect("oversold");
        assert_eq!(allocations, [Allocation { item: "a".into(), warehouse: "w".into(), quantity: 2, oversold: 3 }]);
        let none = allocate(&[Need { item: "a".into(), quantity: 5, oversell: true }], &[]).expect("oversold");
        assert_eq!(none, [Allocation { item: "a".into(), warehouse: String::new(), quantity: 0, oversold: 5 }]);
    }

    fn candidates_strategy() -> impl Strategy<Value = Vec<Candidate>> {
        proptest::collection::vec((0i32..4, proptest::collection::vec(0i64..6, 3)), 0..6).prop_map(|rows| {
            rows.into_iter()
                .enumerate()
                .map(|(n, (priority, stock))| Candidate {
                    warehouse: format!("w{n}"),
                    priority,
                    available: stock.into_iter().enumerate().map(|(i, units)| (format!("i{i}"), units)).collect(),
                })
                .collect()
        })
    }

    fn needs_strategy() -> impl Strategy<Value = Vec<Need>> {
        proptest::collection::vec((1i64..10, any::<bool>()), 1..=3).prop_map(|rows| {
            rows.into_iter()
                .enumerate()
                .map(|(i, (quantity, oversell))| Need { item: format!("i{i}"), quantity, oversell })
                .collect()
        })
    }

    /// The plain greedy search, counting every candidate every round: what the lazy one must choose.
    fn plain_greedy<'a>(candidates: &[&'a Candidate], targets: &[(&Need, i64)]) -> Vec<&'a Candidate> {
        let mut left: Vec<i64> = targets.iter().map(|(_, t)| *t).collect();
        let mut chosen: Vec<&Candidate> = Vec::new();
        let units = |c: &Candidate, item: &str| c.available.get(item).copied().unwrap_or(0).max(0);
        while left.iter().any(|l| *l > 0) {
            let gain = |c: &Candidate, left: &[i64]| {
                targets.iter().zip(left).map(|((need, _), l)| units(c, &need.item).min(*l)).sum::<i64>()
            };
            let best = candidates
                .iter()
                .filter(|c| !chosen.iter().any(|d| d.warehouse == c.warehouse))
                .max_by_key(|c| (gain(c, &left), std::cmp::Reverse((c.priority, &c.warehouse))));
            let Some(best) = best.filter(|c| gain(c, &left) > 0) else { break };
            for ((need, _), l) in targets.iter().zip(left.iter_mut()) {
                *l -= units(best, &need.item).min(*l);
            }
            chosen.push(best);
        }
        chosen
    }

    #[test]
    fn past_the_greedy_rounds_the_rest_is_taken_in_priority_order() {
        // 200 warehouses with one unit each: the hold needs 100 of them, more rounds than the greedy
        // search takes.
        let candidates: Vec<Candidate> =
            (0..200).map(|n| candidate(&format!("w{n:03}"), 200 - n, &[("a", 1)])).collect();
        let allocations = allocate(&[need("a", 100)], &candidates).expect("filled");
        assert_eq!(allocations.iter().map(|a| a.quantity).sum::<i64>(), 100);
        let used = warehouses_used(&allocations);
        assert_eq!(used.len(), 100);
        // Lower priority numbers are preferred: the last hundred warehouses, w100 to w199.
        assert_eq!(used.first().map(String::as_str), Some("w100"));
        assert_eq!(used.last().map(String::as_str), Some("w199"));
    }

    proptest! {
        #[test]
        fn the_lazy_greedy_search_chooses_what_the_plain_one_does(
            needs in needs_strategy(),
            rows in proptest::collection::vec((0i32..4, proptest::collection::vec(0i64..6, 3)), 13..24),
        ) {
            let candidates: Vec<Candidate> = rows
                .into_iter()
                .enumerate()
                .map(|(n, (priority, stock))| Candidate {
                    warehouse: format!("w{n:02}"),
                    priority,
                    available: stock.into_iter().enumerate().map(|(i, units)| (format!("i{i}"), units)).collect(),
                })
                .collect();
            let mut sorted: Vec<&Candidate> = candidates.iter().collect();
            sorted.sort_by(|a, b| (a.priority, &a.warehouse).cmp(&(b.priority, &b.warehouse)));
            let targets: Vec<(&Need, i64)> = needs
                .iter()
                .map(|n| (n, n.quantity.min(candidates.iter().map(|c| c.available[&n.item]).sum())))
                .collect();
            let names = |chosen: Vec<&Candidate>| chosen.into_iter().map(|c| c.warehouse.clone()).collect::<Vec<_>>();
            prop_assert_eq!(names(greedy_covering(&sorted, &targets)), names(plain_greedy(&sorted, &targets)));
        }
    }

    proptest! {
        #[test]
        fn allocations_respect_stock_lines_and_minimality(needs in needs_strategy(), candidates in candidates_strategy()) {
            let total = |item: &str| candidates.iter().map(|c| c.available.get(item).copied().unwrap_or(0)).sum::<i64>();
            match allocate(&needs, &candidates) {
                Err(shortages) => {
                    let expected: Vec<_> = needs.iter().filter(|n| !n.oversell && total(&n.item) < n.quantity).map(|n| n.item.clone()).collect();
                    prop_assert_eq!(shortages.iter().map(|s| s.item.clone()).collect::<Vec<_>>(), expected);
                }
                Ok(allocations) => {
                    for need in &needs {
                        let lines: Vec<_> = allocations.iter().filter(|a| a.item == need.item).collect();
                        let held: i64 = lines.iter().map(|a| a.quantity).sum();
                        let oversold: i64 = lines.iter().map(|a| a.oversold).sum();
                        prop_assert_eq!(held + oversold, need.quantity);
                        prop_assert_eq!(held, need.quantity.min(total(&need.item)), "holds all that exists, up to the need");
                        if !need.oversell { prop_assert_eq!(oversold, 0); }
                    }
                    for a in &allocations {
                        if a.quantity > 0 {
                            let c = candidates.iter().find(|c| c.warehouse == a.warehouse).expect("a candidate");
                            prop_assert!(a.quantity <= c.available.get(&a.item).copied().unwrap_or(0));
                        }
                    }
                    // No smaller set of warehouses could have held the same units.
                    let used = warehouses_used(&allocations).len();
                    for size in 0..used {
                        let mut indices: Vec<usize> = (0..size).collect();
                        loop {
                            let fits = needs.iter().all(|n| {
                                let target = n.quantity.min(total(&n.item));
                                indices.iter().map(|&i| candidates[i].available.get(&n.item).copied().unwrap_or(0)).sum::<i64>() >= target
                            });
                            prop_assert!(!fits, "{size} warehouses would do, {used} were used");
                            if !next_combination(&mut indices, candidates.len()) { break; }
                        }
                    }
                }
            }
        }
    }
}
