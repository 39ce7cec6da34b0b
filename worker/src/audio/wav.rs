//! A minimal WAV reader: 16-bit integer or 32-bit float PCM, any channel
//! count (mixed down to mono), any rate. Enough for espeak-ng's output and
//! for test and CLI files; voice messages are Ogg Opus (`ogg_opus.rs`).

use super::pcm::Audio;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WavError {
    #[error("not a WAV file (no RIFF/WAVE header)")]
    NotWav,
    #[error("WAV file has no {0} chunk")]
    MissingChunk(&'static str),
    #[error("WAV format {format} with {bits} bits per sample is not supported (only 16-bit PCM and 32-bit float)")]
    Unsupported { format: u16, bits: u16 },
    #[error("WAV file says it has {0} channels")]
    BadChannels(u16),
}

pub fn read(bytes: &[u8]) -> Result<Audio, WavError> {
    if bytes.len() < 12 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return Err(WavError::NotWav);
    }
    let mut pos = 12;
    let mut fmt: Option<(u16, u16, u32, u16)> = None;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let size = u32::from_le_bytes([
            bytes[pos + 4],
            bytes[pos + 5],
            bytes[pos + 6],
            bytes[pos + 7],
        ]) as usize;
        let body_start = pos + 8;
        // Streamed WAVs (espeak-ng --stdout) carry a placeholder size: clamp.
        let body = &bytes[body_start..body_start.saturating_add(size).min(bytes.len())];
        match id {
            b"fmt " if body.len() >= 16 => {
                let u16_at = |i: usize| u16::from_le_bytes([body[i], body[i + 1]]);
                let rate = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
                fmt = Some((u16_at(0), u16_at(2), rate, u16_at(14)));
            }
            b"data" => {
                let (format, channels, rate, bits) = fmt.ok_or(WavError::MissingChunk("fmt"))?;
                if channels == 0 {
                    return Err(WavError::BadChannels(channels));
                }
                let samples = match (format, bits) {
                    // 0xFFFE is WAVE_FORMAT_EXTENSIBLE; its subformat is assumed to match.
                    (1 | 0xFFFE, 16) => body
                        .chunks_exact(2)
                        .map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / 32768.0)
                        .collect::<Vec<_>>(),
                    (3 | 0xFFFE, 32) => body
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                        .collect(),
                    _ => return Err(WavError::Unsupported { format, bits }),
                };
                let samples = samples
                    .chunks_exact(channels as usize)
                    .map(|frame| frame.iter().sum::<f32>() / channels as f32)
                    .collect();
                return Ok(Audio { rate, samples });
            }
            _ => {}
        }
        // Chunks are padded to an even size.
        pos = body_start.saturating_add(size).saturating_add(size & 1);
    }
    Err(WavError::MissingChunk(if fmt.is_some() {
        "data"
    } else {
        "fmt"
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wav16(rate: u32, channels: u16, samples: &[i16], data_size: u32) -> Vec<u8> {
        let mut out = b"RIFF\xff\xff\xff\x7fWAVEfmt ".to_vec();
        out.extend_from_slice(&16u32.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&channels.to_le_bytes());
        out.extend_from_slice(&rate.to_le_bytes());
        out.extend_from_slice(&(rate * 2 * channels as u32).to_le_bytes());
        out.extend_from_slice(&(2 * channels).to_le_bytes());
        out.extend_from_slice(&16u16.to_le_bytes());
        out.extend_from_slice(b"data");
        out.extend_from_slice(&data_size.to_le_bytes());
        for s in samples {
            out.extend_from_slice(&s.to_le_bytes());
        }
        out
    }

    #[test]
    fn reads_16_bit_pcm_and_mixes_stereo_to_mono() {
        let a = read(&wav16(22050, 2, &[16384, 0, -32768, -32768], 8)).unwrap();
        assert_eq!(a.rate, 22050);
        assert_eq!(a.samples, vec![0.25, -1.0]);
    }

    #[test]
    fn streamed_wav_with_placeholder_size_reads_what_is_there() {
        let a = read(&wav16(16000, 1, &[0, 16384, 0], 0x7fff_ffff)).unwrap();
        assert_eq!(a.samples, vec![0.0, 0.5, 0.0]);
    }

    #[test]
    fn garbage_and_truncation_are_errors() {
        assert_eq!(read(b"hello"), Err(WavError::NotWav));
        let good = wav16(16000, 1, &[1, 2, 3], 6);
        for len in 0..36 {
            assert!(read(&good[..len]).is_err(), "{len}");
        }
    }
}
