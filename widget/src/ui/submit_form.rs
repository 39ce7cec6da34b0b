//! The form that submits a "count primes" task, optionally private (its
//! result reaches the submitter alone). Its fields keep their own state, so
//! the pool's frequent re-renders never reset what a friend typed. What was
//! typed is checked as it is typed: each problem names its field and goes
//! when the field is fixed, and big work shows how long the pool will take
//! before it is sent; work too big for the pool is refused.

use crate::view::Capacity;
use crate::words::{self, number, plural};
use manifest::events::TaskSpec;
use manifest::kind_error::KindError;
use manifest::limits::{LEASE_HARD_MS, MAX_CHUNKS};
use manifest::task_kind::{TaskKind, PRIMES_MAX_END};
use thiserror::Error;
use web_sys::HtmlInputElement;
use yew::prelude::*;

/// How long one worker (a Web Worker running `worker/src/primes.rs` as
/// wasm) takes per number, in nanoseconds: a fixed cost, plus one pass over
/// the base primes up to √end for every 65,536-number segment of the sieve.
/// Measured with that file compiled to wasm32 in release and run in Node 20
/// (V8, as in Chromium) on one core of an AMD EPYC: [0, 10⁹) in 5.9 s,
/// [10¹², 10¹² + 10⁸) in 0.82 s, [10¹⁵, 10¹⁵ + 10⁷) in 1.10 s; the model gives
/// 5.9 s, 1.02 s and 1.11 s. Natively the same code runs about 4× faster.
const NS_PER_NUMBER: f64 = 5.9;
const NS_PER_BASE_PRIME: f64 = 3.6;
const SIEVE_SEGMENT: f64 = 65_536.0;
/// The most numbers one task counts: about 3 h on one worker near 0, about
/// 40 min on a pool of 4 workers, far more higher up. Beyond it a friend's
/// machines would be pinned for hours; split the range instead.
const MAX_NUMBERS: u64 = 1_000_000_000_000;
/// The longest a piece should take on one worker: half the time after which
/// the room stops waiting for a piece's result, for machines slower than
/// the one measured.
const MAX_PIECE_MS: u64 = LEASE_HARD_MS / 2;

/// How long one worker takes to count the primes in `[start, end)`.
pub fn primes_estimate_ms(start: u64, end: u64) -> u64 {
    let numbers = end.saturating_sub(start) as f64;
    let root = (end as f64).sqrt().max(2.0);
    // π(√end) ≈ √end / ln √end: the base primes each segment goes over.
    let base_primes = root / root.ln().max(1.0);
    let ns = numbers * (NS_PER_NUMBER + NS_PER_BASE_PRIME * base_primes / SIEVE_SEGMENT);
    (ns / 1e6).ceil() as u64
}

/// A field of the form, by the name a friend sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    From,
    To,
    Pieces,
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Field::From => "'From'",
            Field::To => "'To'",
            Field::Pieces => "'Pieces'",
        })
    }
}

/// What is wrong with what was typed, naming the field to fix.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FormError {
    #[error("{0} must be a whole number, like 1000.")]
    NotWhole(Field),
    #[error(
        "'Pieces' must be a whole number from 1 to {}.",
        number(u64::from(MAX_CHUNKS))
    )]
    Pieces,
    #[error("'To' must be more than 'From'.")]
    EmptyRange,
    #[error("'To' can be at most {}.", number(PRIMES_MAX_END))]
    TooLarge,
    #[error("'Pieces' can be at most the {} numbers to count.", number(*.0))]
    MorePiecesThanNumbers(u64),
    #[error("That is {} numbers, {estimate}: count at most {} at a time.", words::large(*numbers), words::large(MAX_NUMBERS))]
    TooMuch { numbers: u64, estimate: String },
    #[error("Each piece would take {} on one worker, and the room stops waiting for a piece after {} min: use at least {} pieces.", words::roughly(*piece_ms), LEASE_HARD_MS / 60_000, number(u64::from(*at_least)))]
    PiecesTooLong { piece_ms: u64, at_least: u32 },
    #[error("{0}")]
    Other(String),
}

impl FormError {
    /// The field to fix, to mark it.
    pub fn field(&self) -> Option<Field> {
        match self {
            FormError::NotWhole(field) => Some(*field),
            FormError::Pieces
            | FormError::MorePiecesThanNumbers(_)
            | FormError::PiecesTooLong { .. } => Some(Field::Pieces),
            FormError::EmptyRange | FormError::TooLarge | FormError::TooMuch { .. } => {
                Some(Field::To)
            }
            FormError::Other(_) => None,
        }
    }
}

/// Reads the three fields into a task, or says what is wrong with them.
fn to_spec(
    start: &str,
    end: &str,
    pieces: &str,
    private: bool,
    capacity: Capacity,
) -> Result<TaskSpec, FormError> {
    let whole = |text: &str, field| {
        text.trim()
            .parse::<u64>()
            .map_err(|_| FormError::NotWhole(field))
    };
    let (start, end) = (whole(start, Field::From)?, whole(end, Field::To)?);
    let chunks = pieces
        .trim()
        .parse::<u32>()
        .ok()
        .filter(|c| (1..=MAX_CHUNKS).contains(c))
        .ok_or(FormError::Pieces)?;
    if start >= end {
        return Err(FormError::EmptyRange);
    }
    if end > PRIMES_MAX_END {
        return Err(FormError::TooLarge);
    }
    let numbers = end - start;
    let ms = primes_estimate_ms(start, end);
    let at_least = ms.div_ceil(MAX_PIECE_MS);
    if numbers > MAX_NUMBERS || at_least > u64::from(MAX_CHUNKS) {
        let estimate = capacity.estimate(ms, MAX_CHUNKS);
        return Err(FormError::TooMuch { numbers, estimate });
    }
    if u64::from(chunks) > numbers {
        return Err(FormError::MorePiecesThanNumbers(numbers));
    }
    if u64::from(chunks) < at_least {
        return Err(FormError::PiecesTooLong {
            piece_ms: ms / u64::from(chunks),
            at_least: at_least as u32,
        });
    }
    let kind = TaskKind::Primes { start, end };
    // What every node checks, so nothing is sent that they would refuse;
    // the checks above already say each in words.
    kind.validate(chunks).map_err(|e| match e {
        KindError::EmptyRange { .. } => FormError::EmptyRange,
        KindError::TooLarge { .. } => FormError::TooLarge,
        KindError::TooManyChunks { len, .. } => FormError::MorePiecesThanNumbers(len),
        other => FormError::Other(other.to_string()),
    })?;
    let mut spec = TaskSpec::new(kind, chunks);
    spec.private = private;
    Ok(spec)
}

/// How long a valid task will take, said before it is sent, when it is
/// long enough to matter.
fn estimate_words(spec: &TaskSpec, capacity: Capacity) -> Option<String> {
    let TaskKind::Primes { start, end } = spec.kind else {
        return None;
    };
    let ms = primes_estimate_ms(start, end);
    (ms >= 10_000).then(|| {
        let took = capacity.estimate(ms, spec.chunks);
        let mut letters = took.chars();
        let took: String = letters
            .next()
            .map(|first| first.to_uppercase().chain(letters).collect())
            .unwrap_or_default();
        let numbers = end - start;
        format!(
            "{took} ({} {}).",
            words::large(numbers),
            plural(numbers, "number", "numbers")
        )
    })
}

#[derive(Properties, PartialEq)]
pub struct Props {
    pub on_submit: Callback<TaskSpec>,
    /// The pool's machines and workers now, for the estimate.
    #[prop_or_default]
    pub capacity: Capacity,
}

fn bind(field: &UseStateHandle<String>) -> Callback<InputEvent> {
    let field = field.clone();
    Callback::from(move |e: InputEvent| {
        field.set(e.target_unchecked_into::<HtmlInputElement>().value())
    })
}

#[function_component(SubmitForm)]
pub fn submit_form(props: &Props) -> Html {
    let start = use_state(|| "0".to_string());
    let end = use_state(|| "50000000".to_string());
    let chunks = use_state(|| "4".to_string());
    let private = use_state(|| false);
    // Problems show once a friend typed or tried to submit, and always
    // reflect what the fields hold now.
    let touched = use_state(|| false);
    let checked = to_spec(&start, &end, &chunks, *private, props.capacity);
    let error = checked.as_ref().err().filter(|_| *touched);
    let invalid = |field: Field| (error.and_then(FormError::field) == Some(field)).to_string();
    let described =
        |field: Field| (error.and_then(FormError::field) == Some(field)).then_some("submit-error");
    let edit = |field: &UseStateHandle<String>| {
        let touched = touched.clone();
        bind(field).reform(move |e: InputEvent| {
            touched.set(true);
            e
        })
    };
    let onsubmit = {
        let (start, end, chunks, private, touched) = (
            start.clone(),
            end.clone(),
            chunks.clone(),
            private.clone(),
            touched.clone(),
        );
        let (on_submit, capacity) = (props.on_submit.clone(), props.capacity);
        Callback::from(move |e: SubmitEvent| {
            e.prevent_default();
            touched.set(true);
            if let Ok(spec) = to_spec(&start, &end, &chunks, *private, capacity) {
                on_submit.emit(spec);
            }
        })
    };
    html! {
        <section class="submit" aria-label="Submit a task">
            <h2>{ "Count primes" }</h2>
            <form {onsubmit} data-testid="submit-form" novalidate=true>
                { "Count primes from " }
                <input type="number" min="0" value={(*start).clone()} oninput={edit(&start)} aria-label="From"
                    aria-invalid={invalid(Field::From)} aria-describedby={described(Field::From)} data-testid="start" />
                { " to " }
                <input type="number" min="1" value={(*end).clone()} oninput={edit(&end)} aria-label="To"
                    aria-invalid={invalid(Field::To)} aria-describedby={described(Field::To)} data-testid="end" />
                { " in " }
                <input type="number" min="1" max={MAX_CHUNKS.to_string()} value={(*chunks).clone()} oninput={edit(&chunks)} aria-label="Pieces"
                    aria-invalid={invalid(Field::Pieces)} aria-describedby={described(Field::Pieces)} data-testid="chunks" />
                { " pieces " }
                <label title="The result goes to you alone, by encrypted message; the room sees only that it finished.">
                    <input type="checkbox" checked={*private} data-testid="private"
                        onchange={let private = private.clone(); Callback::from(move |e: Event|
                            private.set(e.target_unchecked_into::<HtmlInputElement>().checked()))} />
                    { " only I see the result " }
                </label>
                <button type="submit" data-testid="submit">{ "Submit" }</button>
            </form>
            if let Some(e) = error {
                <p class="error" id="submit-error" role="alert" data-testid="submit-error">{ e.to_string() }</p>
            } else if let Some(estimate) = checked.as_ref().ok().and_then(|spec| estimate_words(spec, props.capacity)) {
                <p class="hint estimate" data-testid="submit-estimate">{ estimate }</p>
            }
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POOL: Capacity = Capacity {
        machines: 3,
        workers: 6,
    };

    fn error(start: &str, end: &str, pieces: &str) -> FormError {
        to_spec(start, end, pieces, false, POOL).unwrap_err()
    }

    #[test]
    fn typed_fields_become_a_task() {
        let spec = to_spec("10", " 1000 ", "3", false, POOL).unwrap();
        assert_eq!(
            spec.kind,
            TaskKind::Primes {
                start: 10,
                end: 1000
            }
        );
        assert_eq!(spec.chunks, 3);
        assert!(!spec.private && to_spec("10", "1000", "3", true, POOL).unwrap().private);
    }

    #[test]
    fn each_problem_names_its_field() {
        assert_eq!(error("", "1000", "3"), FormError::NotWhole(Field::From));
        assert_eq!(
            error("", "1000", "3").to_string(),
            "'From' must be a whole number, like 1000."
        );
        assert_eq!(error("0", "ten", "3"), FormError::NotWhole(Field::To));
        assert_eq!(error("-1", "10", "3"), FormError::NotWhole(Field::From));
        assert_eq!(
            error("0", "1000", "0").to_string(),
            "'Pieces' must be a whole number from 1 to 1,000."
        );
        assert_eq!(
            error("5", "5", "1").to_string(),
            "'To' must be more than 'From'."
        );
        assert_eq!(
            error("0", "3", "4").to_string(),
            "'Pieces' can be at most the 3 numbers to count."
        );
        assert_eq!(error("0", "3", "4").field(), Some(Field::Pieces));
        assert_eq!(
            error("0", &(PRIMES_MAX_END + 1).to_string(), "4").field(),
            Some(Field::To)
        );
    }

    #[test]
    fn a_range_too_big_for_the_pool_is_refused_with_an_estimate() {
        let too_much = error("0", "1000000000000000", "4");
        let FormError::TooMuch { numbers, estimate } = &too_much else {
            panic!("{too_much:?}")
        };
        assert_eq!(*numbers, 1_000_000_000_000_000);
        assert!(estimate.ends_with("on the pool's 3 machines"), "{estimate}");
        assert!(
            too_much
                .to_string()
                .starts_with("That is 1 quadrillion numbers, about "),
            "{too_much}"
        );
        assert!(too_much
            .to_string()
            .ends_with("count at most 1 trillion at a time."));
        // A trillion is allowed, in enough pieces.
        assert!(to_spec("0", "1000000000000", "1000", false, POOL).is_ok());
        let few = error("0", "1000000000000", "4");
        assert!(
            matches!(few, FormError::PiecesTooLong { at_least, .. } if at_least > 4),
            "{few:?}"
        );
        assert!(few.to_string().contains("use at least"), "{few}");
    }

    #[test]
    fn the_estimate_follows_the_measured_rate_and_the_pool() {
        // The measurements the constants come from, within 25%.
        for (start, end, measured_ms) in [
            (0, 1_000_000_000, 5_900),
            (1_000_000_000_000, 1_000_100_000_000, 820),
            (1_000_000_000_000_000, 1_000_000_010_000_000, 1_100),
        ] {
            let ms = primes_estimate_ms(start, end) as f64;
            assert!(
                (ms / measured_ms as f64 - 1.0).abs() < 0.25,
                "[{start}, {end}): {ms} ms against {measured_ms} measured"
            );
        }
        let spec = to_spec("0", "1000000000000", "1000", false, POOL).unwrap();
        let said = estimate_words(&spec, POOL).unwrap();
        assert!(said.starts_with("About "), "{said}");
        assert!(
            said.ends_with("on the pool's 3 machines (1 trillion numbers)."),
            "{said}"
        );
        let nobody = estimate_words(&spec, Capacity::default()).unwrap();
        assert!(
            nobody.contains("on one worker, once a friend contributes"),
            "{nobody}"
        );
        let small = to_spec("0", "50000000", "4", false, POOL).unwrap();
        assert_eq!(
            estimate_words(&small, POOL),
            None,
            "quick work needs no estimate"
        );
    }
}
