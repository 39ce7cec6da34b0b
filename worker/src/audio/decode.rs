//! Reads a voice message as users have it: tells the format by its first
//! bytes (never by the file's name) and hands it to the reader for that
//! format. Ogg Opus (what Element sends) and WAV are read; anything else is
//! one error that says which formats are.

use super::pcm::Audio;
use super::{ogg_opus, wav};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AudioError {
    /// `found` says what the bytes look like, so that the user knows what to convert.
    #[error("not a voice message Potluck reads ({found}): it reads Ogg Opus (what Element sends) and WAV")]
    Unsupported { found: &'static str },
    #[error(transparent)]
    Wav(#[from] wav::WavError),
    #[error(transparent)]
    OggOpus(#[from] ogg_opus::OggOpusError),
}

/// Mono samples at the file's own rate (48 kHz for Opus).
pub fn read(bytes: &[u8]) -> Result<Audio, AudioError> {
    match sniff(bytes) {
        Format::Wav => Ok(wav::read(bytes)?),
        Format::OggOpus => Ok(ogg_opus::read(bytes)?),
        Format::Other(found) => Err(AudioError::Unsupported { found }),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Format {
    Wav,
    OggOpus,
    /// What the bytes look like, in words.
    Other(&'static str),
}

fn sniff(bytes: &[u8]) -> Format {
    let at = |i: usize, magic: &[u8]| bytes.get(i..i + magic.len()) == Some(magic);
    if at(0, b"RIFF") && at(8, b"WAVE") {
        return Format::Wav;
    }
    if at(0, b"OggS") {
        return sniff_ogg(bytes);
    }
    Format::Other(if bytes.is_empty() {
        "an empty file"
    } else if at(0, b"ID3") || (bytes.len() >= 2 && bytes[0] == 0xFF && bytes[1] & 0xE0 == 0xE0) {
        "MP3"
    } else if at(4, b"ftyp") {
        "MP4 or M4A"
    } else if at(0, b"fLaC") {
        "FLAC"
    } else if at(0, &[0x1A, 0x45, 0xDF, 0xA3]) {
        "WebM or Matroska"
    } else if at(0, b"RIFF") {
        "a RIFF file that is not WAV"
    } else {
        "no audio format it knows"
    })
}

/// An Ogg file carries Opus when its first packet is an OpusHead. A first
/// page cut short goes to the Ogg Opus reader, which says it is cut short.
fn sniff_ogg(bytes: &[u8]) -> Format {
    // The first page's header is 27 bytes and its segment table, then its packet.
    let Some(&segments) = bytes.get(26) else {
        return Format::OggOpus;
    };
    let Some(packet) = bytes.get(27 + segments as usize..) else {
        return Format::OggOpus;
    };
    let starts = |magic: &[u8]| packet.starts_with(magic);
    if starts(b"OpusHead") || packet.len() < 8 {
        Format::OggOpus
    } else if starts(b"\x01vorbis") {
        Format::Other("Ogg Vorbis")
    } else if starts(b"\x7fFLAC") {
        Format::Other("Ogg FLAC")
    } else if starts(b"Speex   ") {
        Format::Other("Ogg Speex")
    } else if starts(b"\x80theora") {
        Format::Other("Ogg Theora video")
    } else {
        Format::Other("an Ogg file without Opus in it")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ogg page with one packet (CRC not filled in: enough for sniffing).
    fn ogg_page(packet: &[u8]) -> Vec<u8> {
        let mut page = b"OggS\0\x02".to_vec();
        page.extend_from_slice(&[0; 20]);
        page.push(1);
        page.push(packet.len() as u8);
        page.extend_from_slice(packet);
        page
    }

    fn unsupported(bytes: &[u8]) -> String {
        match read(bytes) {
            Err(e @ AudioError::Unsupported { .. }) => e.to_string(),
            other => panic!("expected Unsupported, got {other:?}"),
        }
    }

    #[test]
    fn unknown_formats_name_what_potluck_reads() {
        for bytes in [
            &b""[..],
            b"hello, this is not audio",
            b"ID3\x04\0\0\0\0\0\0",
            b"\0\0\0\x20ftypM4A ",
            b"fLaC\0\0\0\x22",
            b"RIFF\0\0\0\0AVI LIST",
        ] {
            let message = unsupported(bytes);
            assert!(
                message.starts_with("not a voice message Potluck reads (")
                    && message.ends_with("): it reads Ogg Opus (what Element sends) and WAV"),
                "{message}"
            );
        }
    }

    #[test]
    fn the_error_says_what_the_file_looks_like() {
        assert!(unsupported(b"").contains("(an empty file)"));
        assert!(unsupported(b"ID3\x04\0\0").contains("(MP3)"));
        assert!(unsupported(b"\0\0\0\x20ftypM4A ").contains("(MP4 or M4A)"));
        assert!(unsupported(&ogg_page(b"\x01vorbis\0\0\0\0")).contains("(Ogg Vorbis)"));
        assert!(unsupported(&ogg_page(b"something else")).contains("(an Ogg file without Opus"));
    }

    #[test]
    fn formats_are_told_by_their_bytes() {
        assert_eq!(sniff(b"RIFF\0\0\0\0WAVEfmt "), Format::Wav);
        assert_eq!(sniff(&ogg_page(b"OpusHead\x01\x01")), Format::OggOpus);
        // Cut short before the first packet: the Ogg Opus reader says so.
        assert_eq!(sniff(b"OggS\0\x02"), Format::OggOpus);
    }

    #[test]
    fn a_broken_wav_or_ogg_opus_says_what_is_wrong_with_it() {
        let wav = read(b"RIFF\0\0\0\0WAVE").unwrap_err();
        assert!(matches!(wav, AudioError::Wav(_)), "{wav:?}");
        let ogg = read(&ogg_page(b"OpusHead\x01\x01")).unwrap_err();
        assert!(matches!(ogg, AudioError::OggOpus(_)), "{ogg:?}");
    }
}
