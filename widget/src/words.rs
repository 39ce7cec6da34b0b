//! Numbers, counts and times as a person reads them: "1 worker", "21,336,326",
//! "50 million", "12 s ago", "1:02:03". Pure functions of their inputs; the
//! only thing taken from the browser is the viewer's digit separators, read
//! once from `Intl.NumberFormat` (natively, English ones), and every function
//! that uses them has a twin on `Separators` that tests pass them to.
//! It must never decide anything: it only puts words to what it is given.

/// The marks between groups of three digits and before decimals, in the
/// viewer's locale ("21,336,326" in English, "21.336.326" in German).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Separators {
    pub group: char,
    pub decimal: char,
}

impl Separators {
    pub const ENGLISH: Separators = Separators {
        group: ',',
        decimal: '.',
    };

    /// The viewer's: from the browser's `Intl.NumberFormat`, read once.
    pub fn viewer() -> Separators {
        #[cfg(target_arch = "wasm32")]
        {
            thread_local! {
                static VIEWER: Separators = browser::separators().unwrap_or(Separators::ENGLISH);
            }
            VIEWER.with(|s| *s)
        }
        #[cfg(not(target_arch = "wasm32"))]
        Separators::ENGLISH
    }

    /// `n` with its digits grouped by three: "21,336,326".
    pub fn number(self, n: u64) -> String {
        let digits = n.to_string();
        let mut out = String::with_capacity(digits.len() + digits.len() / 3);
        for (i, digit) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(self.group);
            }
            out.push(digit);
        }
        out
    }

    /// A count and its noun: "1 worker", "2 workers", "1,000 workers".
    pub fn count(self, n: u64, one: &str, many: &str) -> String {
        format!("{} {}", self.number(n), plural(n, one, many))
    }

    /// A large round number in words where that reads better ("50 million",
    /// "3 billion"); any other number in digits ("2,700,000,000").
    pub fn large(self, n: u64) -> String {
        match in_words(n) {
            Some((whole, scale)) => format!("{} {scale}", self.number(whole)),
            None => self.number(n),
        }
    }

    /// A fraction as a whole percentage: "40%".
    pub fn percent(self, fraction: f32) -> String {
        format!("{}%", self.number(whole_percent(fraction)))
    }

    /// One decimal where it matters ("2.5"), none where it does not ("3").
    pub fn tenths(self, value: f64) -> String {
        let tenths = (value * 10.0).round().max(0.0) as u64;
        if tenths.is_multiple_of(10) || tenths >= 100 {
            self.number((tenths + 5) / 10)
        } else {
            format!(
                "{}{}{}",
                self.number(tenths / 10),
                self.decimal,
                tenths % 10
            )
        }
    }
}

/// The singular or plural noun for `n` of something.
pub fn plural<'a>(n: u64, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// `Separators::number` in the viewer's locale.
pub fn number(n: u64) -> String {
    Separators::viewer().number(n)
}

/// `Separators::count` in the viewer's locale.
pub fn count(n: u64, one: &str, many: &str) -> String {
    Separators::viewer().count(n, one, many)
}

/// `Separators::large` in the viewer's locale.
pub fn large(n: u64) -> String {
    Separators::viewer().large(n)
}

/// A fraction as whole percent, rounded down (0.999 is not yet 100), for
/// words and for a `<progress max="100">`. The UI writes no floating-point
/// numbers: that code would be 12 KB of its wasm.
pub fn whole_percent(fraction: f32) -> u64 {
    (fraction.clamp(0.0, 1.0) * 100.0) as u64
}

/// `Separators::percent` in the viewer's locale.
pub fn percent(fraction: f32) -> String {
    Separators::viewer().percent(fraction)
}

/// Scales from the largest down: a number reads in words on the largest
/// that divides it exactly, up to 999 of it.
const SCALES: [(u64, &str); 5] = [
    (1_000_000_000_000_000_000, "quintillion"),
    (1_000_000_000_000_000, "quadrillion"),
    (1_000_000_000_000, "trillion"),
    (1_000_000_000, "billion"),
    (1_000_000, "million"),
];

/// `n` as a whole number of a scale ("50", "million"), if it is one.
fn in_words(n: u64) -> Option<(u64, &'static str)> {
    SCALES
        .iter()
        .find(|(scale, _)| n >= *scale && n.is_multiple_of(*scale))
        .map(|&(scale, name)| (n / scale, name))
        .filter(|(whole, _)| *whole < 1_000)
}

/// Whether `Separators::large` would write `n` in words.
pub fn reads_in_words(n: u64) -> bool {
    in_words(n).is_some()
}

/// How long ago something happened, from the milliseconds since: "just now",
/// "12 s ago", "3 min ago", "5 h ago", "a day ago", "4 days ago". Within a
/// day counts in hours rather than calendar days: the widget cannot know
/// when the viewer's midnight falls from the milliseconds alone.
pub fn ago(elapsed_ms: u64) -> String {
    let s = elapsed_ms / 1_000;
    match s {
        0..=4 => "just now".into(),
        5..=59 => format!("{s} s ago"),
        60..=3_599 => format!("{} min ago", s / 60),
        3_600..=86_399 => format!("{} h ago", s / 3_600),
        86_400..=172_799 => "a day ago".into(),
        _ => format!("{} days ago", number(s / 86_400)),
    }
}

/// A recording's length as a player shows it, in whole seconds rounded up
/// (a 6.2 s message is "0:07"): "0:07", "12:30", "1:02:03".
pub fn duration(ms: u64) -> String {
    let s = ms.div_ceil(1_000);
    let (h, m, s) = (s / 3_600, s / 60 % 60, s % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// A rough length of time, for estimates: "under a minute", "about 40 min",
/// "about 2.5 h", "about 3 days". Two figures at most: an estimate is rough.
pub fn roughly(ms: u64) -> String {
    let seconds = ms as f64 / 1_000.0;
    let separators = Separators::viewer();
    if seconds < 60.0 {
        "under a minute".into()
    } else if seconds < 3_600.0 {
        format!("about {} min", (seconds / 60.0).round() as u64)
    } else if seconds < 2.0 * 86_400.0 {
        format!("about {} h", separators.tenths(seconds / 3_600.0))
    } else if seconds < 365.0 * 86_400.0 {
        format!("about {} days", (seconds / 86_400.0).round() as u64)
    } else {
        format!(
            "about {} years",
            separators.tenths(seconds / (365.25 * 86_400.0))
        )
    }
}

/// Names joined as a person lists them: "alice", "alice and bob",
/// "alice, bob and carol".
pub fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

#[cfg(target_arch = "wasm32")]
mod browser {
    use super::Separators;
    use js_sys::{Array, Intl::NumberFormat, Object, Reflect};

    /// The separators the browser's default locale writes 12,345.6 with.
    pub fn separators() -> Option<Separators> {
        let format = NumberFormat::new(&Array::new(), &Object::new());
        let (mut group, mut decimal) = (None, None);
        for part in format.format_to_parts(12_345.6).iter() {
            let field = |name: &str| Reflect::get(&part, &name.into()).ok()?.as_string();
            let value = field("value").and_then(|v| v.chars().next());
            match field("type").as_deref() {
                Some("group") => group = value,
                Some("decimal") => decimal = value,
                _ => {}
            }
        }
        Some(Separators {
            group: group?,
            decimal: decimal?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GERMAN: Separators = Separators {
        group: '.',
        decimal: ',',
    };

    #[test]
    fn digits_are_grouped_by_three_with_the_viewers_separator() {
        let english = Separators::ENGLISH;
        assert_eq!(english.number(0), "0");
        assert_eq!(english.number(999), "999");
        assert_eq!(english.number(1_000), "1,000");
        assert_eq!(english.number(21_336_326), "21,336,326");
        assert_eq!(english.number(u64::MAX), "18,446,744,073,709,551,615");
        assert_eq!(GERMAN.number(21_336_326), "21.336.326");
        let thin = Separators {
            group: '\u{202f}',
            decimal: ',',
        };
        assert_eq!(thin.number(1_234_567), "1\u{202f}234\u{202f}567");
    }

    #[test]
    fn counts_take_the_plural_except_for_one() {
        let english = Separators::ENGLISH;
        assert_eq!(english.count(1, "worker", "workers"), "1 worker");
        assert_eq!(english.count(0, "worker", "workers"), "0 workers");
        assert_eq!(english.count(2, "worker", "workers"), "2 workers");
        assert_eq!(english.count(1_000, "prime", "primes"), "1,000 primes");
        assert_eq!(plural(1, "piece", "pieces"), "piece");
    }

    #[test]
    fn round_large_numbers_read_in_words_and_others_in_digits() {
        let english = Separators::ENGLISH;
        assert_eq!(english.large(50_000_000), "50 million");
        assert_eq!(english.large(3_000_000_000), "3 billion");
        assert_eq!(english.large(400_000_000), "400 million");
        assert_eq!(english.large(1_000_000_000_000_000), "1 quadrillion");
        assert_eq!(english.large(2_700_000_000), "2,700,000,000");
        assert_eq!(english.large(50_000_001), "50,000,001");
        assert_eq!(english.large(999_999), "999,999");
        assert_eq!(english.large(1_000), "1,000");
        assert!(reads_in_words(1_000_000) && !reads_in_words(1_500_000));
    }

    #[test]
    fn fractions_read_as_percentages_and_tenths() {
        let english = Separators::ENGLISH;
        assert_eq!(english.percent(0.4), "40%");
        assert_eq!(english.percent(0.999), "99%");
        assert_eq!(english.percent(1.5), "100%");
        assert_eq!(english.tenths(2.54), "2.5");
        assert_eq!(english.tenths(3.0), "3");
        assert_eq!(english.tenths(12.4), "12");
        assert_eq!(GERMAN.tenths(2.5), "2,5");
    }

    #[test]
    fn times_ago_grow_from_seconds_to_days() {
        assert_eq!(ago(0), "just now");
        assert_eq!(ago(12_400), "12 s ago");
        assert_eq!(ago(3 * 60_000 + 5_000), "3 min ago");
        assert_eq!(ago(5 * 3_600_000), "5 h ago");
        assert_eq!(ago(30 * 3_600_000), "a day ago");
        assert_eq!(ago(4 * 86_400_000), "4 days ago");
    }

    #[test]
    fn durations_read_like_a_players_clock() {
        assert_eq!(duration(6_200), "0:07");
        assert_eq!(duration(7_000), "0:07");
        assert_eq!(duration(62_000), "1:02");
        assert_eq!(duration(3_723_000), "1:02:03");
        assert_eq!(duration(0), "0:00");
    }

    #[test]
    fn estimates_round_to_what_a_person_can_plan_with() {
        assert_eq!(roughly(20_000), "under a minute");
        assert_eq!(roughly(40 * 60_000 + 10_000), "about 40 min");
        assert_eq!(roughly(150 * 60_000), "about 2.5 h");
        assert_eq!(roughly(9 * 86_400_000), "about 9 days");
        assert_eq!(roughly(3 * 365 * 86_400_000), "about 3 years");
    }

    #[test]
    fn names_are_listed_with_and() {
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(and_list(&names(&[])), "");
        assert_eq!(and_list(&names(&["alice"])), "alice");
        assert_eq!(and_list(&names(&["alice", "bob"])), "alice and bob");
        assert_eq!(
            and_list(&names(&["alice", "bob", "carol"])),
            "alice, bob and carol"
        );
    }
}
