//! openai Whisper's log-mel spectrogram, single-threaded (candle's
//! `pcm_to_mel` spawns threads, which panics in a browser worker, and its
//! framing differs from openai's: `shared/notes/whisper.md` §5.4, §7.2).
//!
//! Follows faster-whisper's `FeatureExtractor` so the same audio gives the
//! same tokens: 160 zero samples appended, centred STFT (reflect padding,
//! periodic Hann window of 400, hop 160, last frame dropped), power `|X|²`,
//! slaney mel filters as librosa builds them, `log10`, clamp to 8 below the
//! **global** maximum, `(x + 4) / 4`. A 30 s window is then cut from the whole
//! file's features and padded to 3000 frames with 0.0 in this normalised
//! domain, as openai's and faster-whisper's `pad_or_trim` do.

use rustfft::num_complex::Complex;
use rustfft::FftPlanner;

pub const SAMPLE_RATE: usize = 16_000;
pub const N_FFT: usize = 400;
pub const HOP_LENGTH: usize = 160;
/// Frames in one 30 s window, the encoder's fixed input length.
pub const N_FRAMES: usize = 3000;

/// Normalised log-mel features of a whole recording, `[n_mels, frames]` row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct LogMel {
    pub n_mels: usize,
    pub frames: usize,
    pub data: Vec<f32>,
}

impl LogMel {
    /// The features of the 30 s window starting at `start` frames, padded
    /// with 0.0 past the end of the recording: `[n_mels, N_FRAMES]`.
    pub fn window(&self, start: usize) -> Vec<f32> {
        let mut out = vec![0.0f32; self.n_mels * N_FRAMES];
        let end = self.frames.min(start.saturating_add(N_FRAMES));
        if start >= end {
            return out;
        }
        for m in 0..self.n_mels {
            let row = &self.data[m * self.frames..(m + 1) * self.frames];
            out[m * N_FRAMES..m * N_FRAMES + (end - start)].copy_from_slice(&row[start..end]);
        }
        out
    }
}

/// Mel filters for 16 kHz and `N_FFT`, each stored over its non-zero bins.
pub struct MelFilters {
    /// `(first FFT bin, weights)` per mel band.
    bands: Vec<(usize, Vec<f32>)>,
}

impl MelFilters {
    /// librosa's `filters.mel(sr=16000, n_fft=400, n_mels)` (slaney scale and
    /// area normalisation), computed in f64 like librosa, stored as f32.
    pub fn new(n_mels: usize) -> Self {
        let n_bins = N_FFT / 2 + 1;
        let nyquist = SAMPLE_RATE as f64 / 2.0;
        let fft_freq = |k: usize| k as f64 * nyquist / (n_bins - 1) as f64;
        let top = hz_to_mel(nyquist);
        let mel_f: Vec<f64> = (0..n_mels + 2)
            .map(|i| mel_to_hz(top * i as f64 / (n_mels + 1) as f64))
            .collect();
        let bands = (0..n_mels)
            .map(|i| {
                let (lo, centre, hi) = (mel_f[i], mel_f[i + 1], mel_f[i + 2]);
                let enorm = 2.0 / (hi - lo);
                let weights: Vec<(usize, f32)> = (0..n_bins)
                    .filter_map(|k| {
                        let f = fft_freq(k);
                        let lower = (f - lo) / (centre - lo);
                        let upper = (hi - f) / (hi - centre);
                        let w = lower.min(upper).max(0.0) * enorm;
                        (w > 0.0).then_some((k, w as f32))
                    })
                    .collect();
                let first = weights.first().map_or(0, |&(k, _)| k);
                // Filters are triangles: their non-zero bins are contiguous.
                (first, weights.into_iter().map(|(_, w)| w).collect())
            })
            .collect();
        Self { bands }
    }

    pub fn n_mels(&self) -> usize {
        self.bands.len()
    }

    /// Centre frequency in Hz of each band (for tests and debugging).
    pub fn centres_hz(n_mels: usize) -> Vec<f64> {
        let top = hz_to_mel(SAMPLE_RATE as f64 / 2.0);
        (1..=n_mels)
            .map(|i| mel_to_hz(top * i as f64 / (n_mels + 1) as f64))
            .collect()
    }

    fn apply(&self, power: &[f32], out: &mut [f32]) {
        for ((first, w), o) in self.bands.iter().zip(out.iter_mut()) {
            *o = w.iter().zip(&power[*first..]).map(|(a, b)| a * b).sum();
        }
    }
}

// Slaney's mel scale (librosa's default): linear below 1 kHz, log above.
const F_SP: f64 = 200.0 / 3.0;
const MIN_LOG_HZ: f64 = 1000.0;
const MIN_LOG_MEL: f64 = MIN_LOG_HZ / F_SP;

fn log_step() -> f64 {
    6.4f64.ln() / 27.0
}

fn hz_to_mel(hz: f64) -> f64 {
    if hz >= MIN_LOG_HZ {
        MIN_LOG_MEL + (hz / MIN_LOG_HZ).ln() / log_step()
    } else {
        hz / F_SP
    }
}

fn mel_to_hz(mel: f64) -> f64 {
    if mel >= MIN_LOG_MEL {
        MIN_LOG_HZ * (log_step() * (mel - MIN_LOG_MEL)).exp()
    } else {
        mel * F_SP
    }
}

/// numpy's `reflect` padding index (edge not repeated), bouncing as often
/// as needed so that very short input cannot go out of bounds.
fn reflect(i: isize, len: usize) -> usize {
    if len <= 1 {
        return 0;
    }
    let period = 2 * (len as isize - 1);
    let m = i.rem_euclid(period);
    (if m < len as isize { m } else { period - m }) as usize
}

/// Normalised log-mel features of 16 kHz mono `samples`.
pub fn log_mel(samples: &[f32], filters: &MelFilters) -> LogMel {
    let n_mels = filters.n_mels();
    // faster-whisper appends one hop of silence before framing.
    let len = samples.len() + HOP_LENGTH;
    let sample = |i: usize| samples.get(i).copied().unwrap_or(0.0);
    // torch.stft(center=True) frames, minus the last one.
    let frames = len / HOP_LENGTH;
    let window: Vec<f32> = (0..N_FFT)
        .map(|n| {
            let x = 2.0 * std::f64::consts::PI * n as f64 / N_FFT as f64;
            (0.5 - 0.5 * x.cos()) as f32
        })
        .collect();
    let fft = FftPlanner::<f32>::new().plan_fft_forward(N_FFT);
    let mut scratch = vec![Complex::default(); fft.get_inplace_scratch_len()];
    let mut buf = vec![Complex::default(); N_FFT];
    let mut power = vec![0.0f32; N_FFT / 2 + 1];
    let mut column = vec![0.0f32; n_mels];
    let mut data = vec![0.0f32; n_mels * frames];
    let half = (N_FFT / 2) as isize;
    for t in 0..frames {
        let start = (t * HOP_LENGTH) as isize - half;
        for (n, b) in buf.iter_mut().enumerate() {
            let i = reflect(start + n as isize, len);
            *b = Complex::new(sample(i) * window[n], 0.0);
        }
        fft.process_with_scratch(&mut buf, &mut scratch);
        for (p, c) in power.iter_mut().zip(&buf) {
            *p = c.norm_sqr();
        }
        filters.apply(&power, &mut column);
        for (m, v) in column.iter().enumerate() {
            data[m * frames + t] = v.max(1e-10).log10();
        }
    }
    let max = data.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for v in &mut data {
        *v = (v.max(max - 8.0) + 4.0) / 4.0;
    }
    LogMel {
        n_mels,
        frames,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(hz: f32, seconds: f32) -> Vec<f32> {
        let n = (seconds * SAMPLE_RATE as f32) as usize;
        (0..n)
            .map(|i| (2.0 * std::f32::consts::PI * hz * i as f32 / SAMPLE_RATE as f32).sin() * 0.5)
            .collect()
    }

    fn argmax(v: impl Iterator<Item = f32>) -> usize {
        v.enumerate()
            .fold(
                (0, f32::NEG_INFINITY),
                |b, (i, x)| if x > b.1 { (i, x) } else { b },
            )
            .0
    }

    #[test]
    fn a_1khz_sine_peaks_in_the_band_centred_nearest_1khz() {
        let filters = MelFilters::new(80);
        let mel = log_mel(&sine(1000.0, 1.0), &filters);
        let mid = mel.frames / 2;
        let peak = argmax((0..80).map(|m| mel.data[m * mel.frames + mid]));
        let centres = MelFilters::centres_hz(80);
        let nearest = argmax(centres.iter().map(|c| -((c - 1000.0).abs() as f32)));
        assert!(
            peak.abs_diff(nearest) <= 1,
            "peak band {peak}, nearest {nearest}"
        );
        // The loudest value is the normalisation's reference: (max + 4) / 4.
        let top = mel.data.iter().copied().fold(f32::MIN, f32::max);
        assert!((mel.data[peak * mel.frames + mid] - top).abs() < 0.05);
    }

    #[test]
    fn frame_count_matches_faster_whisper() {
        let filters = MelFilters::new(80);
        // (N + 160) // 160 frames, as faster-whisper's extractor returns.
        for n in [0, 1, 159, 160, 16_000, 16_123] {
            assert_eq!(
                log_mel(&vec![0.0; n], &filters).frames,
                (n + 160) / 160,
                "{n}"
            );
        }
    }

    #[test]
    fn values_are_clamped_within_two_of_the_max() {
        let filters = MelFilters::new(80);
        let mel = log_mel(&sine(440.0, 0.5), &filters);
        let max = mel.data.iter().copied().fold(f32::MIN, f32::max);
        let min = mel.data.iter().copied().fold(f32::MAX, f32::min);
        assert!(max - min <= 2.0 + 1e-5, "{min}..{max}");
    }

    #[test]
    fn window_pads_past_the_end_with_zero() {
        let mel = LogMel {
            n_mels: 2,
            frames: 3,
            data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        };
        let w = mel.window(1);
        assert_eq!(w.len(), 2 * N_FRAMES);
        assert_eq!(&w[..3], &[2.0, 3.0, 0.0]);
        assert_eq!(&w[N_FRAMES..N_FRAMES + 3], &[5.0, 6.0, 0.0]);
        assert!(mel.window(10).iter().all(|&v| v == 0.0));
    }

    #[test]
    fn slaney_filters_are_area_normalised_triangles() {
        let filters = MelFilters::new(80);
        let bin_hz = SAMPLE_RATE as f64 / N_FFT as f64;
        for (i, (_, w)) in filters.bands.iter().enumerate() {
            // Area of a triangle of height 2/(hi-lo) over (hi-lo) Hz is 1;
            // sampled every bin_hz, the sum times bin_hz approximates it.
            let area: f64 = w.iter().map(|&x| x as f64).sum::<f64>() * bin_hz;
            assert!(area > 0.5 && area < 1.5 || i < 10, "band {i}: area {area}");
        }
    }

    #[test]
    fn reflect_padding_matches_numpy() {
        // np.pad([0,1,2,3], 3, 'reflect') == [3,2,1,0,1,2,3,2,1,0]
        let got: Vec<usize> = (-3..7).map(|i| reflect(i, 4)).collect();
        assert_eq!(got, vec![3, 2, 1, 0, 1, 2, 3, 2, 1, 0]);
    }
}
