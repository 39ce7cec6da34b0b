//! Reader for CTranslate2's `model.bin` (binary versions 1 to 6), the format
//! faster-whisper's weights ship in.
//!
//! The file is a flat list of named, row-major variables followed by aliases
//! (layout in `shared/notes/whisper.md` §2). Payloads are **not aligned**, so
//! they are kept as byte slices and decoded with `from_le_bytes`, never cast.
//! Every length is checked against the bytes left: a truncated or garbage file
//! is an error, never a panic or an oversized allocation.

use std::collections::BTreeMap;

/// The newest layout CTranslate2 writes (`current_binary_version` in
/// `include/ctranslate2/models/model.h`); newer files may change the layout.
pub const MAX_BINARY_VERSION: u32 = 6;

/// Why a `model.bin` could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Ct2Error {
    #[error("model.bin is truncated: needed {needed} bytes at offset {offset} for {what}, but only {available} remain")]
    Truncated {
        what: &'static str,
        offset: usize,
        needed: usize,
        available: usize,
    },
    #[error("model.bin has binary version {0}; this reader understands 1 to {MAX_BINARY_VERSION}")]
    BadVersion(u32),
    #[error("model.bin has an empty or unterminated string at offset {0}")]
    BadString(usize),
    #[error("model.bin variable {name:?} has unknown data type id {id}")]
    BadDType { name: String, id: u8 },
    #[error("model.bin variable {name:?} of shape {shape:?} and type {dtype:?} should have {expected} bytes, the file says {actual}")]
    SizeMismatch {
        name: String,
        shape: Vec<usize>,
        dtype: DType,
        expected: usize,
        actual: usize,
    },
    #[error("model.bin has {0} bytes after its last alias")]
    TrailingBytes(usize),
    #[error("model.bin alias {alias:?} points to missing variable {target:?}")]
    DanglingAlias { alias: String, target: String },
}

/// Element types of CTranslate2 variables (`include/ctranslate2/types.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F32,
    I8,
    I16,
    I32,
    F16,
    BF16,
}

impl DType {
    /// The same type in candle, which has no signed 8-bit one (int8 packages
    /// are not among those Potluck pins).
    pub fn to_candle(self) -> candle_core::Result<candle_core::DType> {
        Ok(match self {
            DType::F32 => candle_core::DType::F32,
            DType::F16 => candle_core::DType::F16,
            DType::BF16 => candle_core::DType::BF16,
            DType::I16 => candle_core::DType::I16,
            DType::I32 => candle_core::DType::I32,
            DType::I8 => {
                candle_core::bail!("int8 weights are not supported; use a float16 package")
            }
        })
    }

    fn from_id(id: u8) -> Option<Self> {
        Some(match id {
            0 => Self::F32,
            1 => Self::I8,
            2 => Self::I16,
            3 => Self::I32,
            4 => Self::F16,
            5 => Self::BF16,
            _ => return None,
        })
    }

    /// Versions 1 to 3 stored an item size instead of a type id.
    fn from_legacy_item_size(size: u8) -> Option<Self> {
        Some(match size {
            4 => Self::F32,
            2 => Self::I16,
            1 => Self::I8,
            _ => return None,
        })
    }

    pub fn size(self) -> usize {
        match self {
            Self::I8 => 1,
            Self::I16 | Self::F16 | Self::BF16 => 2,
            Self::F32 | Self::I32 => 4,
        }
    }
}

/// One variable: its shape (empty for a scalar) and its raw little-endian bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Variable<'a> {
    pub shape: Vec<usize>,
    pub dtype: DType,
    pub data: &'a [u8],
}

impl Variable<'_> {
    /// The value of a rank-0 integer variable (CTranslate2 stores model
    /// attributes such as `encoder/num_heads` this way).
    pub fn scalar_int(&self) -> Option<i64> {
        if !self.shape.is_empty() {
            return None;
        }
        let d = self.data;
        Some(match self.dtype {
            DType::I8 => i8::from_le_bytes([*d.first()?]) as i64,
            DType::I16 => i16::from_le_bytes(d.get(..2)?.try_into().ok()?) as i64,
            DType::I32 => i32::from_le_bytes(d.get(..4)?.try_into().ok()?) as i64,
            _ => return None,
        })
    }
}

/// A parsed `model.bin`, borrowing its payloads from the file's bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Ct2Model<'a> {
    pub binary_version: u32,
    pub spec_name: Option<String>,
    pub spec_revision: Option<u32>,
    pub variables: BTreeMap<String, Variable<'a>>,
    /// alias name → the variable it shares storage with.
    pub aliases: BTreeMap<String, String>,
}

impl<'a> Ct2Model<'a> {
    /// Parses a whole `model.bin`; every byte must be consumed.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Ct2Error> {
        let mut r = Reader { bytes, pos: 0 };
        let binary_version = r.u32("binary version")?;
        if binary_version == 0 || binary_version > MAX_BINARY_VERSION {
            return Err(Ct2Error::BadVersion(binary_version));
        }
        let (spec_name, spec_revision) = if binary_version >= 2 {
            (Some(r.string()?), Some(r.u32("spec revision")?))
        } else {
            (None, None)
        };
        let count = r.u32("variable count")?;
        let mut variables = BTreeMap::new();
        for _ in 0..count {
            let name = r.string()?;
            let rank = r.u8("rank")?;
            let mut shape = Vec::with_capacity(rank as usize);
            for _ in 0..rank {
                shape.push(r.u32("dimension")? as usize);
            }
            let (dtype, num_bytes) = if binary_version >= 4 {
                let id = r.u8("data type")?;
                let dtype = DType::from_id(id).ok_or_else(|| Ct2Error::BadDType {
                    name: name.clone(),
                    id,
                })?;
                (dtype, r.u32("payload size")? as usize)
            } else {
                let size = r.u8("item size")?;
                let dtype =
                    DType::from_legacy_item_size(size).ok_or_else(|| Ct2Error::BadDType {
                        name: name.clone(),
                        id: size,
                    })?;
                let elements = r.u32("element count")? as usize;
                (dtype, elements.saturating_mul(dtype.size()))
            };
            let expected = shape
                .iter()
                .try_fold(dtype.size(), |acc, &d| acc.checked_mul(d))
                .unwrap_or(usize::MAX);
            if expected != num_bytes {
                return Err(Ct2Error::SizeMismatch {
                    name,
                    shape,
                    dtype,
                    expected,
                    actual: num_bytes,
                });
            }
            let data = r.take(num_bytes, "variable payload")?;
            variables.insert(name, Variable { shape, dtype, data });
        }
        let mut aliases = BTreeMap::new();
        if binary_version >= 3 {
            let count = r.u32("alias count")?;
            for _ in 0..count {
                let alias = r.string()?;
                let target = r.string()?;
                if !variables.contains_key(&target) {
                    return Err(Ct2Error::DanglingAlias { alias, target });
                }
                aliases.insert(alias, target);
            }
        }
        let left = bytes.len() - r.pos;
        if left != 0 {
            return Err(Ct2Error::TrailingBytes(left));
        }
        Ok(Self {
            binary_version,
            spec_name,
            spec_revision,
            variables,
            aliases,
        })
    }

    /// A variable by name, following aliases.
    pub fn get(&self, name: &str) -> Option<&Variable<'a>> {
        let name = self.aliases.get(name).map_or(name, String::as_str);
        self.variables.get(name)
    }
}

/// A bounds-checked cursor over the file.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Ct2Error> {
        let available = self.bytes.len() - self.pos;
        if n > available {
            return Err(Ct2Error::Truncated {
                what,
                offset: self.pos,
                needed: n,
                available,
            });
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], Ct2Error> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, Ct2Error> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, Ct2Error> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    /// `u16` length including a trailing NUL, then the bytes.
    fn string(&mut self) -> Result<String, Ct2Error> {
        let at = self.pos;
        let len = u16::from_le_bytes(self.array("string length")?) as usize;
        let raw = self.take(len, "string")?;
        match raw.split_last() {
            Some((0, text)) => Ok(String::from_utf8_lossy(text).into_owned()),
            _ => Err(Ct2Error::BadString(at)),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn push_str(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&((s.len() + 1) as u16).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }

    /// Writes a version-6 file the way CTranslate2's `_serialize` does.
    pub(crate) fn write_v6(
        vars: &[(&str, &[usize], u8, &[u8])],
        aliases: &[(&str, &str)],
    ) -> Vec<u8> {
        let mut out = 6u32.to_le_bytes().to_vec();
        push_str(&mut out, "WhisperSpec");
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(vars.len() as u32).to_le_bytes());
        for (name, shape, dtype, data) in vars {
            push_str(&mut out, name);
            out.push(shape.len() as u8);
            for d in *shape {
                out.extend_from_slice(&(*d as u32).to_le_bytes());
            }
            out.push(*dtype);
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(data);
        }
        out.extend_from_slice(&(aliases.len() as u32).to_le_bytes());
        for (a, t) in aliases {
            push_str(&mut out, a);
            push_str(&mut out, t);
        }
        out
    }

    fn sample() -> Vec<u8> {
        write_v6(
            &[
                ("decoder/num_heads", &[], 2, &6i16.to_le_bytes()),
                ("w", &[2, 3], 1, &[1, 2, 3, 4, 5, 6]),
            ],
            &[("alias", "w")],
        )
    }

    #[test]
    fn parses_variables_scalars_and_aliases() {
        let bytes = sample();
        let m = Ct2Model::parse(&bytes).unwrap();
        assert_eq!(m.binary_version, 6);
        assert_eq!(m.spec_name.as_deref(), Some("WhisperSpec"));
        assert_eq!(m.spec_revision, Some(3));
        assert_eq!(m.get("decoder/num_heads").unwrap().scalar_int(), Some(6));
        let w = m.get("alias").unwrap();
        assert_eq!(w.shape, vec![2, 3]);
        assert_eq!(w.dtype, DType::I8);
        assert_eq!(w.data, &[1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let bytes = sample();
        for len in 0..bytes.len() {
            assert!(
                Ct2Model::parse(&bytes[..len]).is_err(),
                "prefix of {len} bytes"
            );
        }
    }

    #[test]
    fn truncated_payload_says_what_is_missing() {
        let bytes = sample();
        let err = Ct2Model::parse(&bytes[..bytes.len() - 30]).unwrap_err();
        assert!(matches!(err, Ct2Error::Truncated { .. }), "{err}");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        // A cheap deterministic generator: no rand dependency for one test.
        let mut x: u32 = 0x1234_5678;
        for round in 0..2000 {
            let len = (round % 200) as usize;
            let mut bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            if round % 2 == 0 && len >= 4 {
                // Valid version, so the parser gets past the first check.
                bytes[..4].copy_from_slice(&6u32.to_le_bytes());
            }
            let _ = Ct2Model::parse(&bytes);
        }
        // Flipped bytes of a valid file.
        let good = sample();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0xff;
            let _ = Ct2Model::parse(&bad);
        }
    }

    #[test]
    fn rejects_newer_binary_versions() {
        let mut bytes = sample();
        bytes[..4].copy_from_slice(&7u32.to_le_bytes());
        assert_eq!(Ct2Model::parse(&bytes), Err(Ct2Error::BadVersion(7)));
    }

    #[test]
    fn rejects_payload_size_that_disagrees_with_shape() {
        let bytes = write_v6(&[("w", &[2, 2], 4, &[0; 6])], &[]);
        let err = Ct2Model::parse(&bytes).unwrap_err();
        assert!(
            matches!(
                err,
                Ct2Error::SizeMismatch {
                    expected: 8,
                    actual: 6,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn rejects_trailing_bytes() {
        let mut bytes = sample();
        bytes.push(0);
        assert_eq!(Ct2Model::parse(&bytes), Err(Ct2Error::TrailingBytes(1)));
    }

    #[test]
    fn rejects_alias_to_missing_variable() {
        let bytes = write_v6(&[], &[("a", "nope")]);
        assert!(matches!(
            Ct2Model::parse(&bytes),
            Err(Ct2Error::DanglingAlias { .. })
        ));
    }
}
