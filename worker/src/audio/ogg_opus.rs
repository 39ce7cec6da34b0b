//! Reads Ogg Opus (RFC 7845), the format of Element's voice messages, into
//! mono 48 kHz samples: the `ogg` crate splits the pages into packets and
//! `opus-rs`, a pure-Rust port of libopus, decodes them (why that decoder:
//! docs/whisper.md, "Reading audio natively"). Mono and stereo (mapping
//! family 0) only; it must never panic on what a user hands it.

use super::pcm::Audio;
use ogg::{OggReadError, PacketReader};
use std::io::Cursor;

/// Opus always decodes at 48 kHz; OpusHead's input rate is only what the
/// encoder was given.
pub const RATE: u32 = 48_000;

/// The longest Opus packet: 120 ms at 48 kHz, per channel.
const MAX_PACKET_SAMPLES: usize = 5760;

/// A page whose packets all continue on the next page has no granule position.
const NO_GRANULE: u64 = u64::MAX;

/// An Ogg page header without its segment table.
const PAGE_HEADER_LEN: usize = 27;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OggOpusError {
    #[error("the Ogg file is cut short")]
    Truncated,
    #[error("the Ogg file is damaged ({0})")]
    Damaged(String),
    #[error("this Ogg file has no Opus in it (its first packet is not an OpusHead)")]
    NotOpus,
    #[error("the Ogg Opus header is malformed ({0})")]
    BadHead(&'static str),
    #[error("Ogg Opus with {channels} channels (channel mapping family {family}) is not supported: only mono and stereo")]
    Channels { channels: u8, family: u8 },
    #[error("Opus packet {index} could not be decoded ({reason})")]
    Packet { index: usize, reason: &'static str },
}

impl From<OggReadError> for OggOpusError {
    fn from(e: OggReadError) -> Self {
        match e {
            OggReadError::ReadError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                OggOpusError::Truncated
            }
            other => OggOpusError::Damaged(other.to_string()),
        }
    }
}

/// What the decoder needs from OpusHead (RFC 7845 §5.1).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Head {
    channels: usize,
    /// Samples at 48 kHz to drop from the start: the encoder's look-ahead.
    pre_skip: u64,
    /// Linear factor from the header's output gain (Q7.8 dB).
    gain: f32,
}

fn parse_head(packet: &[u8]) -> Result<Head, OggOpusError> {
    if !packet.starts_with(b"OpusHead") {
        return Err(OggOpusError::NotOpus);
    }
    if packet.len() < 19 {
        return Err(OggOpusError::BadHead("shorter than 19 bytes"));
    }
    // Versions 0–15 are compatible with version 1 (RFC 7845 §5.1).
    if packet[8] > 15 {
        return Err(OggOpusError::BadHead("unknown version"));
    }
    let (channels, family) = (packet[9], packet[18]);
    if family != 0 || !(1..=2).contains(&channels) {
        return Err(OggOpusError::Channels { channels, family });
    }
    let gain_db = i16::from_le_bytes([packet[16], packet[17]]) as f32 / 256.0;
    Ok(Head {
        channels: channels as usize,
        pre_skip: u16::from_le_bytes([packet[10], packet[11]]) as u64,
        gain: 10f32.powf(gain_db / 20.0),
    })
}

/// Mono samples at 48 kHz: the Opus stream's channels averaged, its
/// pre-skip dropped and the end trimmed to the last granule position.
///
/// A file cut inside a page is [`OggOpusError::Truncated`]; one cut at a
/// page boundary (or inside the next page's header, which the `ogg` crate
/// reads as the end) gives the audio before the cut, as players do.
pub fn read(bytes: &[u8]) -> Result<Audio, OggOpusError> {
    if bytes.len() < PAGE_HEADER_LEN && b"OggS".starts_with(&bytes[..bytes.len().min(4)]) {
        return Err(OggOpusError::Truncated);
    }
    let mut reader = PacketReader::new(Cursor::new(bytes));
    let first = reader.read_packet()?.ok_or(OggOpusError::Truncated)?;
    let serial = first.stream_serial();
    let head = parse_head(&first.data)?;
    let channels = head.channels;
    let mut decoder = opus_rs::OpusDecoder::new(RATE as i32, channels)
        .map_err(|reason| OggOpusError::Packet { index: 0, reason })?;

    let mut frame = vec![0f32; MAX_PACKET_SAMPLES * channels];
    let mut mono: Vec<f32> = Vec::new();
    // Granule positions count samples at 48 kHz from the start of the
    // stream, pre-skip included: the first audio page's tells where the
    // stream starts, the last one's where it ends.
    let mut first_granule: Option<(u64, u64)> = None;
    let mut last_granule: Option<u64> = None;
    let mut index = 0;
    let mut tags_seen = false;
    while let Some(packet) = reader.read_packet()? {
        // Another logical stream multiplexed in (chained or not): not ours.
        if packet.stream_serial() != serial {
            continue;
        }
        if !tags_seen {
            tags_seen = true;
            if packet.data.starts_with(b"OpusTags") {
                continue;
            }
            return Err(OggOpusError::BadHead("no OpusTags after OpusHead"));
        }
        index += 1;
        let n = decoder
            .decode(&packet.data, MAX_PACKET_SAMPLES, &mut frame)
            .map_err(|reason| OggOpusError::Packet { index, reason })?;
        let decoded = frame.get(..n * channels).unwrap_or(&[]);
        mono.extend(
            decoded
                .chunks_exact(channels)
                .map(|f| f.iter().sum::<f32>() / channels as f32 * head.gain),
        );
        if packet.last_in_page() && packet.absgp_page() != NO_GRANULE {
            let granule = packet.absgp_page();
            first_granule.get_or_insert((granule, mono.len() as u64));
            last_granule = Some(granule);
        }
    }

    let (start, end) = trim(&head, first_granule, last_granule, mono.len() as u64);
    mono.truncate(end as usize);
    mono.drain(..(start as usize).min(mono.len()));
    Ok(Audio {
        rate: RATE,
        samples: mono,
    })
}

/// Which decoded samples are the recording (RFC 7845 §4): after pre-skip
/// (and after any start trimmed by a first granule position smaller than
/// what its page decodes to), and before the last granule position.
fn trim(
    head: &Head,
    first_granule: Option<(u64, u64)>,
    last_granule: Option<u64>,
    decoded: u64,
) -> (u64, u64) {
    let Some(((first, decoded_by_first), last)) = first_granule.zip(last_granule) else {
        return (head.pre_skip.min(decoded), decoded);
    };
    // Granule position of decoded sample 0: zero for a stream that starts
    // at its beginning, as every encoder writes.
    let origin = first as i128 - decoded_by_first as i128;
    let start = head.pre_skip as i128 + (-origin).max(0);
    let end = (last as i128 - origin).clamp(0, decoded as i128);
    (start.clamp(0, end) as u64, end as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ogg::writing::{PacketWriteEndInfo, PacketWriter};

    const SERIAL: u32 = 0x506f_7431;

    fn opus_head(channels: u8, pre_skip: u16, gain: i16) -> Vec<u8> {
        let mut head = b"OpusHead\x01".to_vec();
        head.push(channels);
        head.extend_from_slice(&pre_skip.to_le_bytes());
        head.extend_from_slice(&16_000u32.to_le_bytes());
        head.extend_from_slice(&gain.to_le_bytes());
        head.push(0);
        head
    }

    /// The encoder's look-ahead at 48 kHz, as libopus's (4 ms + 2.5 ms).
    const PRE_SKIP: u16 = 312;

    /// An Ogg Opus file of 20 ms packets of `signal` (interleaved), as an
    /// encoder writes it: headers on pages of their own, a few packets per
    /// page, enough packets to flush the look-ahead, the last granule
    /// position `pre_skip + frames`.
    fn ogg_opus(channels: usize, signal: &[f32], head: Vec<u8>) -> Vec<u8> {
        let pre_skip = PRE_SKIP;
        let mut encoder =
            opus_rs::OpusEncoder::new(RATE as i32, channels, opus_rs::Application::Voip).unwrap();
        let frames = signal.len() / channels;
        let mut padded = signal.to_vec();
        padded.resize((frames + pre_skip as usize) * channels, 0.0);
        let mut out = Vec::new();
        let mut writer = PacketWriter::new(&mut out);
        writer
            .write_packet(head, SERIAL, PacketWriteEndInfo::EndPage, 0)
            .unwrap();
        let tags = b"OpusTags\x05\0\0\0potluck\0\0\0\0".to_vec();
        writer
            .write_packet(tags, SERIAL, PacketWriteEndInfo::EndPage, 0)
            .unwrap();
        let chunks: Vec<&[f32]> = padded.chunks(960 * channels).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let mut pcm = chunk.to_vec();
            pcm.resize(960 * channels, 0.0);
            let mut packet = vec![0u8; 1500];
            let len = encoder.encode(&pcm, 960, &mut packet).unwrap();
            packet.truncate(len);
            let last = i + 1 == chunks.len();
            let granule = if last {
                pre_skip as u64 + frames as u64
            } else {
                (i as u64 + 1) * 960
            };
            let end = match (last, i % 4) {
                (true, _) => PacketWriteEndInfo::EndStream,
                (false, 3) => PacketWriteEndInfo::EndPage,
                _ => PacketWriteEndInfo::NormalPacket,
            };
            writer.write_packet(packet, SERIAL, end, granule).unwrap();
        }
        out
    }

    fn tone(frames: usize, channels: usize) -> Vec<f32> {
        (0..frames * channels)
            .map(|i| {
                let t = (i / channels) as f32 / RATE as f32;
                // Right an octave above left, so that stereo is really coded as stereo.
                let hz = 440.0 * (1 + i % channels) as f32;
                0.3 * (std::f32::consts::TAU * hz * t).sin()
            })
            .collect()
    }

    fn rms(x: &[f32]) -> f32 {
        (x.iter().map(|s| s * s).sum::<f32>() / x.len().max(1) as f32).sqrt()
    }

    #[test]
    fn pre_skip_is_dropped_and_the_end_trimmed_to_the_last_granule() {
        // 0.51 s: not a whole number of 20 ms packets, so the last is padded.
        let frames = 24_480;
        let file = ogg_opus(1, &tone(frames, 1), opus_head(1, PRE_SKIP, 0));
        let audio = read(&file).unwrap();
        assert_eq!(audio.rate, 48_000);
        assert_eq!(audio.samples.len(), frames);
        let level = rms(&audio.samples[4800..]);
        assert!((level - 0.3 / 2f32.sqrt()).abs() < 0.03, "rms {level}");
    }

    #[test]
    fn stereo_is_mixed_to_mono() {
        let frames = 19_200;
        let stereo = tone(frames, 2);
        let file = ogg_opus(2, &stereo, opus_head(2, PRE_SKIP, 0));
        let audio = read(&file).unwrap();
        assert_eq!(audio.samples.len(), frames);
        let mixed: Vec<f32> = stereo.chunks(2).map(|f| (f[0] + f[1]) / 2.0).collect();
        let (a, b) = (&audio.samples[4800..], &mixed[4800..]);
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let corr = dot / (a.len() as f32 * rms(a) * rms(b));
        assert!(corr > 0.9, "correlation with the mixed input {corr}");
    }

    #[test]
    fn output_gain_is_applied() {
        let signal = tone(9600, 1);
        let plain = read(&ogg_opus(1, &signal, opus_head(1, PRE_SKIP, 0))).unwrap();
        // -6.02 dB in Q7.8 halves the amplitude.
        let half = read(&ogg_opus(1, &signal, opus_head(1, PRE_SKIP, -1541))).unwrap();
        let ratio = rms(&half.samples) / rms(&plain.samples);
        assert!((ratio - 0.5).abs() < 0.01, "ratio {ratio}");
    }

    #[test]
    fn a_stream_that_starts_later_keeps_its_samples() {
        // Granule positions offset by a second (a stream cut from a longer
        // one): the same samples come out.
        let head = Head {
            channels: 1,
            pre_skip: 312,
            gain: 1.0,
        };
        assert_eq!(trim(&head, Some((960, 960)), Some(5000), 5760), (312, 5000));
        assert_eq!(
            trim(&head, Some((48_960, 960)), Some(53_000), 5760),
            (312, 5000)
        );
        // A first page decoding to more than its granule position trims the start.
        assert_eq!(trim(&head, Some((700, 960)), Some(4740), 5760), (572, 5000));
        // No granule position at all: only the pre-skip goes.
        assert_eq!(trim(&head, None, None, 5760), (312, 5760));
        // Nonsense granule positions never give a range outside what was decoded.
        for (first, last) in [
            ((0, 960), 0),
            ((960, 960), u64::MAX - 1),
            ((u64::MAX - 1, 0), 0),
        ] {
            let (start, end) = trim(&head, Some(first), Some(last), 5760);
            assert!(
                start <= end && end <= 5760,
                "{first:?} {last}: {start}..{end}"
            );
        }
    }

    #[test]
    fn garbage_is_an_error() {
        for bytes in [
            &b""[..],
            b"OggS",
            b"OggS\0\x02garbage garbage garbage garbage",
        ] {
            assert!(read(bytes).is_err(), "{bytes:?}");
        }
    }

    #[test]
    fn a_file_cut_short_is_an_error_or_shorter_never_a_panic() {
        let file = ogg_opus(2, &tone(9600, 2), opus_head(2, PRE_SKIP, 0));
        let full = read(&file).unwrap().samples.len();
        for len in 0..file.len() {
            match read(&file[..len]) {
                Ok(audio) => assert!(audio.samples.len() < full, "{len}"),
                Err(OggOpusError::Truncated) => {}
                Err(e) => panic!("cut at {len}: {e}"),
            }
        }
        assert_eq!(read(&file[..file.len() - 10]), Err(OggOpusError::Truncated));
        assert_eq!(read(b"OggS"), Err(OggOpusError::Truncated));
    }

    #[test]
    fn damaged_pages_and_packets_are_errors_never_panics() {
        let file = ogg_opus(1, &tone(9600, 1), opus_head(1, PRE_SKIP, 0));
        for i in (0..file.len()).step_by(7) {
            let mut bad = file.clone();
            bad[i] ^= 0x5a;
            // Most flips break a page's CRC; any result but a panic will do.
            let _ = read(&bad);
        }
        let mut bad = file.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(matches!(read(&bad), Err(OggOpusError::Damaged(_))));
    }

    #[test]
    fn an_ogg_file_without_opus_is_an_error() {
        let mut out = Vec::new();
        let mut writer = PacketWriter::new(&mut out);
        writer
            .write_packet(
                &b"\x01vorbis\0\0\0\0\x01"[..],
                1,
                PacketWriteEndInfo::EndStream,
                0,
            )
            .unwrap();
        assert_eq!(read(&out), Err(OggOpusError::NotOpus));
    }

    #[test]
    fn surround_and_malformed_heads_are_errors() {
        let mut surround = opus_head(6, PRE_SKIP, 0);
        surround[18] = 1;
        assert_eq!(
            parse_head(&surround),
            Err(OggOpusError::Channels {
                channels: 6,
                family: 1
            })
        );
        assert!(parse_head(&opus_head(0, PRE_SKIP, 0)).is_err());
        assert_eq!(
            parse_head(b"OpusHead\x01\x01"),
            Err(OggOpusError::BadHead("shorter than 19 bytes"))
        );
        let message = OggOpusError::Channels {
            channels: 6,
            family: 1,
        }
        .to_string();
        assert!(message.contains("only mono and stereo"), "{message}");
    }
}
