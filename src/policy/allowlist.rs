//! Allowlists of user and group IDs: `allowedUsers`, `allowedGroups`.
//!
//! Entries: `"1000"`, `"1000-2000"` (inclusive), `">1000"`, `">=1000"`, `"<1000"`,
//! `"<=1000"`, `"*"`, and exclusions `"!1500"`, `"!1500-1600"`. A value is allowed when
//! it matches an inclusion (or there are no inclusions) and no exclusion. Root (0) is
//! allowed only by the literal entry `"0"`: no range, comparison or `*` admits it.
//! IDs are 0…2147483647.

use std::{fmt, str::FromStr};

/// The largest ID Kubernetes accepts for a user or group.
pub const MAX_ID: i64 = 2_147_483_647;

/// An inclusive range of IDs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    lo: i64,
    hi: i64,
}

impl Span {
    fn contains(self, id: i64) -> bool {
        self.lo <= id && id <= self.hi
    }
}

/// One parsed allowlist entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    /// The literal `"0"`: the only way to admit root.
    Root,
    /// An inclusion; never admits 0.
    Include(Span),
    /// An exclusion (`!N`, `!A-B`).
    Exclude(Span),
}

/// Why an allowlist entry is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// The entry is empty.
    #[error(
        "empty entry, expected an ID, a range A-B, a comparison (>N, >=N, <N, <=N), * or an exclusion !N / !A-B"
    )]
    Empty,
    /// Not a number where one was expected.
    #[error("\"{0}\" is not an ID, expected a number 0…2147483647")]
    NotANumber(String),
    /// A number out of range.
    #[error("{0} is out of range, IDs are 0…2147483647")]
    OutOfRange(String),
    /// A range whose start is after its end.
    #[error("range start {0} > end {1}")]
    Reversed(i64, i64),
    /// An exclusion of something other than an ID or a range.
    #[error("an exclusion takes an ID or a range (!N, !A-B)")]
    BadExclusion,
    /// A number with a leading zero (`"01000"`, `"00"`): octal to some readers, decimal
    /// to others.
    #[error("{0:?} has a leading zero, which is ambiguous (octal or decimal?), expected {1}")]
    LeadingZero(String, String),
}

impl EntryError {
    /// Why the entry is refused and how to write it, where that is not obvious.
    pub fn help(&self) -> Option<String> {
        match self {
            EntryError::LeadingZero(written, canonical) if canonical == "\"0\"" => Some(format!(
                "{written:?} is not the entry \"0\": root is admitted only by the literal \"0\"; write \"0\" to admit root, or remove the entry"
            )),
            EntryError::LeadingZero(written, canonical) => Some(match i64::from_str_radix(written, 8) {
                Ok(octal) => format!(
                    "{written:?} is {octal} to a reader that takes a leading zero for octal and {} to one that does not; write {canonical}, or the octal value in decimal",
                    canonical.trim_matches('"')
                ),
                Err(_) => format!("IDs are written without leading zeros; write {canonical}"),
            }),
            _ => None,
        }
    }
}

fn parse_id(s: &str) -> Result<i64, EntryError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(EntryError::NotANumber(s.to_string()));
    }
    if s.len() > 1 && s.starts_with('0') {
        let trimmed = s.trim_start_matches('0');
        let canonical = if trimmed.is_empty() { "0" } else { trimmed };
        return Err(EntryError::LeadingZero(s.to_string(), format!("{canonical:?}")));
    }
    match s.parse::<i64>() {
        Ok(n) if n <= MAX_ID => Ok(n),
        _ => Err(EntryError::OutOfRange(s.to_string())),
    }
}

fn parse_range(s: &str) -> Result<Span, EntryError> {
    match s.split_once('-') {
        Some((a, b)) => {
            let (lo, hi) = (parse_id(a)?, parse_id(b)?);
            if lo > hi {
                return Err(EntryError::Reversed(lo, hi));
            }
            Ok(Span { lo, hi })
        }
        None => parse_id(s).map(|n| Span { lo: n, hi: n }),
    }
}

impl FromStr for Entry {
    type Err = EntryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let inc = |lo: i64, hi: i64| Entry::Include(Span { lo: lo.max(1), hi });
        Ok(match s {
            "" => return Err(EntryError::Empty),
            "0" => Entry::Root,
            "*" => inc(1, MAX_ID),
            _ if s.starts_with('!') => {
                let rest = &s[1..];
                if rest.is_empty() || rest.starts_with(['!', '<', '>', '*']) {
                    return Err(EntryError::BadExclusion);
                }
                Entry::Exclude(parse_range(rest)?)
            }
            _ if s.starts_with(">=") => inc(parse_id(&s[2..])?, MAX_ID),
            _ if s.starts_with("<=") => inc(1, parse_id(&s[2..])?),
            _ if s.starts_with('>') => inc(parse_id(&s[1..])? + 1, MAX_ID),
            _ if s.starts_with('<') => inc(1, parse_id(&s[1..])? - 1),
            _ => {
                let span = parse_range(s)?;
                inc(span.lo, span.hi)
            }
        })
    }
}

/// A parsed allowlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdSet {
    entries: Vec<Entry>,
    has_inclusions: bool,
    /// The entries as written, for messages.
    written: Vec<String>,
}

impl IdSet {
    /// Parses a list of entries. On error, returns the index of the first bad entry.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, (usize, EntryError)> {
        let parsed = entries
            .iter()
            .enumerate()
            .map(|(i, e)| e.as_ref().parse::<Entry>().map_err(|err| (i, err)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::from_entries(
            parsed,
            entries.iter().map(|e| e.as_ref().to_string()).collect(),
        ))
    }

    /// Parses every entry and returns every error, by index.
    pub fn parse_all<S: AsRef<str>>(entries: &[S]) -> Result<Self, Vec<(usize, EntryError)>> {
        let mut errors = Vec::new();
        let mut parsed = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            match e.as_ref().parse::<Entry>() {
                Ok(entry) => parsed.push(entry),
                Err(err) => errors.push((i, err)),
            }
        }
        if errors.is_empty() {
            Ok(Self::from_entries(
                parsed,
                entries.iter().map(|e| e.as_ref().to_string()).collect(),
            ))
        } else {
            Err(errors)
        }
    }

    fn from_entries(entries: Vec<Entry>, written: Vec<String>) -> Self {
        let has_inclusions = entries.iter().any(|e| !matches!(e, Entry::Exclude(_)));
        Self {
            entries,
            has_inclusions,
            written,
        }
    }

    /// Whether an ID is allowed.
    pub fn allows(&self, id: i64) -> bool {
        let excluded = self
            .entries
            .iter()
            .any(|e| matches!(e, Entry::Exclude(s) if s.contains(id)));
        if excluded {
            return false;
        }
        if id == 0 {
            return self.entries.contains(&Entry::Root);
        }
        if !(1..=MAX_ID).contains(&id) {
            return false;
        }
        !self.has_inclusions
            || self
                .entries
                .iter()
                .any(|e| matches!(e, Entry::Include(s) if s.contains(id)))
    }

    /// Whether no ID at all is allowed.
    pub fn admits_nothing(&self) -> bool {
        if self.allows(0) {
            return false;
        }
        // Candidate IDs: the bounds of every span and their neighbours.
        let mut candidates = vec![1, MAX_ID];
        for e in &self.entries {
            if let Entry::Include(s) | Entry::Exclude(s) = e {
                candidates.extend([s.lo - 1, s.lo, s.hi, s.hi + 1]);
            }
        }
        !candidates.into_iter().any(|id| self.allows(id))
    }

    /// The entries as written.
    pub fn written(&self) -> &[String] {
        &self.written
    }
}

/// The policy's default when no list is given: any non-root ID.
pub fn allowed_without_list(id: i64) -> bool {
    (1..=MAX_ID).contains(&id)
}

impl fmt::Display for IdSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, e) in self.written.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "\"{e}\"")?;
        }
        f.write_str("]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn set(entries: &[&str]) -> IdSet {
        IdSet::parse(entries).unwrap()
    }

    #[rstest]
    #[case::leading_zero("01000", "\"1000\"")]
    #[case::double_zero("00", "\"0\"")]
    #[case::in_a_range("1000-02000", "\"2000\"")]
    #[case::in_a_comparison(">=010", "\"10\"")]
    #[case::in_an_exclusion("!007", "\"7\"")]
    fn leading_zeros_are_ambiguous(#[case] entry: &str, #[case] canonical: &str) {
        let (_, e) = IdSet::parse(&[entry]).unwrap_err();
        assert!(
            matches!(&e, EntryError::LeadingZero(_, c) if c == canonical),
            "{e}"
        );
        assert!(e.help().is_some());
        assert!(IdSet::parse(&["0", "1000", "0-0"]).is_ok());
    }

    #[rstest]
    #[case::exact(&["1000"], 1000, true)]
    #[case::exact_other(&["1000"], 1001, false)]
    #[case::range_low_edge(&["1000-2000"], 1000, true)]
    #[case::range_high_edge(&["1000-2000"], 2000, true)]
    #[case::range_out(&["1000-2000"], 2001, false)]
    #[case::gt(&[">1"], 2, true)]
    #[case::gt_edge(&[">1"], 1, false)]
    #[case::ge(&[">=1000"], 1000, true)]
    #[case::lt(&["<1000"], 999, true)]
    #[case::lt_edge(&["<1000"], 1000, false)]
    #[case::le(&["<=1000"], 1000, true)]
    #[case::star(&["*"], 65534, true)]
    #[case::star_max(&["*"], 2147483647, true)]
    #[case::star_no_root(&["*"], 0, false)]
    #[case::ge0_no_root(&[">=0"], 0, false)]
    #[case::ge0_admits_one(&[">=0"], 1, true)]
    #[case::lt10_no_root(&["<10"], 0, false)]
    #[case::range_from_zero_no_root(&["0-10"], 0, false)]
    #[case::literal_root(&["0"], 0, true)]
    #[case::literal_root_only(&["0"], 1, false)]
    #[case::exclusion(&["1000-2000", "!1500"], 1500, false)]
    #[case::exclusion_neighbour(&["1000-2000", "!1500"], 1501, true)]
    #[case::exclusion_range(&["*", "!1500-1600"], 1600, false)]
    #[case::only_exclusions(&["!1500"], 1499, true)]
    #[case::only_exclusions_excluded(&["!1500"], 1500, false)]
    #[case::only_exclusions_no_root(&["!1500"], 0, false)]
    #[case::excluded_root(&["0", "!0"], 0, false)]
    #[case::overlap(&["1000-2000", "1500-3000"], 2500, true)]
    #[case::overlap_excl_wins(&["1000-2000", "1500-3000", "!1800-2600"], 2500, false)]
    #[case::max(&["2147483647"], 2147483647, true)]
    #[case::above_max(&["*"], 2147483648, false)]
    #[case::negative(&["*"], -1, false)]
    #[case::empty_list(&[], 5, true)]
    #[case::empty_list_root(&[], 0, false)]
    fn allows(#[case] entries: &[&str], #[case] id: i64, #[case] expected: bool) {
        assert_eq!(set(entries).allows(id), expected, "{entries:?} {id}");
    }

    #[rstest]
    #[case::empty("", EntryError::Empty)]
    #[case::word("abc", EntryError::NotANumber("abc".into()))]
    #[case::negative("-1", EntryError::NotANumber("".into()))]
    #[case::too_big("2147483648", EntryError::OutOfRange("2147483648".into()))]
    #[case::huge("99999999999999999999999", EntryError::OutOfRange("99999999999999999999999".into()))]
    #[case::reversed("2000-1000", EntryError::Reversed(2000, 1000))]
    #[case::spaces(" 1000", EntryError::NotANumber(" 1000".into()))]
    #[case::open_range("1000-", EntryError::NotANumber("".into()))]
    #[case::excl_cmp("!>5", EntryError::BadExclusion)]
    #[case::excl_star("!*", EntryError::BadExclusion)]
    #[case::excl_empty("!", EntryError::BadExclusion)]
    #[case::cmp_empty(">=", EntryError::NotANumber("".into()))]
    #[case::cmp_too_big(">2147483648", EntryError::OutOfRange("2147483648".into()))]
    #[case::plus("+5", EntryError::NotANumber("+5".into()))]
    fn malformed(#[case] entry: &str, #[case] expected: EntryError) {
        assert_eq!(entry.parse::<Entry>(), Err(expected));
    }

    #[test]
    fn parse_reports_index() {
        assert_eq!(IdSet::parse(&["1", "x"]).unwrap_err().0, 1);
        let all = IdSet::parse_all(&["y", "1", "x"]).unwrap_err();
        assert_eq!(all.iter().map(|e| e.0).collect::<Vec<_>>(), vec![0, 2]);
    }

    #[rstest]
    #[case::lt1(&["<1"], true)]
    #[case::cancelled(&["1000-2000", "!1000-2000"], true)]
    #[case::gt_max(&[">2147483647"], true)]
    #[case::root_only(&["0"], false)]
    #[case::star(&["*"], false)]
    #[case::only_excl(&["!1"], false)]
    #[case::hole(&["1000-2000", "!1000-1499", "!1501-2000"], false)]
    fn admits_nothing(#[case] entries: &[&str], #[case] expected: bool) {
        assert_eq!(set(entries).admits_nothing(), expected);
    }

    #[test]
    fn display_lists_entries() {
        assert_eq!(set(&["1000", ">=2000"]).to_string(), r#"["1000", ">=2000"]"#);
    }
}
