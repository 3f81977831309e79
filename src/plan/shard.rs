//! `run --shard K/N`: which services shard K of N builds. Deterministic (the
//! same selection and weights give the same split on every machine), with
//! services joined by `requires` in one shard (a dependent is built `FROM`
//! its requirement's image of this run), balanced by the durations of an
//! earlier results file (`--weights`) or else by count.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;

/// Shard `index` (1-based) of `of`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shard {
    pub(crate) index: usize,
    pub(crate) of: usize,
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Shard, String> {
        let bad = || format!("`{text}` is not K/N with 1 <= K <= N, like 2/3");
        let (k, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, of) = (
            k.trim().parse::<usize>().map_err(|_| bad())?,
            n.trim().parse::<usize>().map_err(|_| bad())?,
        );
        if index == 0 || index > of {
            return Err(bad());
        }
        Ok(Shard { index, of })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.of)
    }
}

/// Splits `services` (name → the names it requires, all of them in
/// `services`) into `of` shards, each a sorted list of names. Groups of
/// services joined by `requires` go whole to one shard: heaviest group
/// first, each to the lightest shard so far (ties: the lower shard). A
/// service's weight is its duration in `weights`; one missing there
/// weighs the mean of those present, and without weights every service
/// weighs 1.
pub(crate) fn assign(
    services: &BTreeMap<String, Vec<String>>,
    weights: &HashMap<String, u64>,
    of: usize,
) -> Vec<Vec<String>> {
    let known: Vec<u64> = services
        .keys()
        .filter_map(|n| weights.get(n).copied())
        .collect();
    let default = match known.is_empty() {
        true => 1,
        false => (known.iter().sum::<u64>() / known.len() as u64).max(1),
    };
    let weight = |name: &str| weights.get(name).copied().unwrap_or(default).max(1);

    let mut groups: Vec<(u64, BTreeSet<String>)> = groups(services)
        .into_iter()
        .map(|g| (g.iter().map(|n| weight(n)).sum(), g))
        .collect();
    // Heaviest first; equal weights by their first name, for determinism.
    groups.sort_by(|(wa, a), (wb, b)| wb.cmp(wa).then_with(|| a.first().cmp(&b.first())));
    let mut shards: Vec<(u64, Vec<String>)> = vec![(0, Vec::new()); of];
    for (w, group) in groups {
        let (_, lightest) = shards
            .iter()
            .enumerate()
            .map(|(i, (load, _))| (*load, i))
            .min()
            .expect("at least one shard");
        shards[lightest].0 += w;
        shards[lightest].1.extend(group);
    }
    shards
        .into_iter()
        .map(|(_, mut names)| {
            names.sort();
            names
        })
        .collect()
}

/// The services joined by `requires`, in either direction.
fn groups(services: &BTreeMap<String, Vec<String>>) -> Vec<BTreeSet<String>> {
    let mut neighbours: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, requires) in services {
        neighbours.entry(name).or_default();
        for r in requires {
            neighbours.entry(name).or_default().push(r);
            neighbours.entry(r).or_default().push(name);
        }
    }
    let mut seen = BTreeSet::new();
    let mut groups = Vec::new();
    for start in neighbours.keys() {
        if seen.contains(start) {
            continue;
        }
        let mut group = BTreeSet::new();
        let mut todo = vec![*start];
        while let Some(n) = todo.pop() {
            if seen.insert(n) {
                group.insert(n.to_string());
                todo.extend(neighbours[n].iter().copied());
            }
        }
        groups.push(group);
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn services(list: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
        list.iter()
            .map(|(n, r)| (n.to_string(), r.iter().map(|s| s.to_string()).collect()))
            .collect()
    }

    #[test]
    fn shards_parse_and_refuse() {
        assert_eq!("2/3".parse::<Shard>().unwrap(), Shard { index: 2, of: 3 });
        for bad in ["0/3", "4/3", "3", "a/b", "1/0", ""] {
            let e = bad.parse::<Shard>().unwrap_err();
            assert!(e.contains("is not K/N"), "{bad}: {e}");
        }
    }

    #[test]
    fn requires_stay_together_and_the_split_is_stable() {
        let s = services(&[
            ("base", &[]),
            ("orders", &["base"]),
            ("gateway", &["base"]),
            ("web", &[]),
            ("cart", &[]),
            ("mail", &["queue"]),
            ("queue", &[]),
        ]);
        let shards = assign(&s, &HashMap::new(), 3);
        assert_eq!(
            shards,
            [
                vec!["base", "gateway", "orders"],
                vec!["mail", "queue"],
                vec!["cart", "web"],
            ]
        );
        // Every service exactly once.
        let all: BTreeSet<&String> = shards.iter().flatten().collect();
        assert_eq!(all.len(), s.len());
        assert_eq!(assign(&s, &HashMap::new(), 3), shards, "stable");
    }

    #[test]
    fn weights_balance_by_duration() {
        let s = services(&[("a", &[]), ("b", &[]), ("c", &[]), ("d", &[])]);
        let weights: HashMap<String, u64> = [("a", 90), ("b", 30), ("c", 30), ("d", 30)]
            .map(|(n, w)| (n.to_string(), w))
            .into();
        // By count it would be 2 + 2; by time a alone balances b, c and d.
        assert_eq!(assign(&s, &weights, 2), [vec!["a"], vec!["b", "c", "d"]]);
        assert_eq!(
            assign(&s, &HashMap::new(), 2),
            [vec!["a", "c"], vec!["b", "d"]]
        );
        // A service the weights do not know weighs their mean.
        let partial: HashMap<String, u64> = [("a".to_string(), 100)].into();
        assert_eq!(
            assign(&s, &partial, 4)
                .iter()
                .filter(|s| s.len() == 1)
                .count(),
            4
        );
    }

    #[test]
    fn more_shards_than_groups_leaves_some_empty() {
        let s = services(&[("a", &[]), ("b", &["a"])]);
        let shards = assign(&s, &HashMap::new(), 3);
        assert_eq!(shards, [vec!["a", "b"], vec![], vec![]]);
    }
}
