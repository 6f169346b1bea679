//! A read-only view of a safetensors file: parse the header, borrow tensors in place.
//!
//! Format: an 8-byte little-endian header length `n`, `n` bytes of JSON mapping tensor names
//! to `{dtype, shape, data_offsets: [begin, end]}` (offsets relative to the end of the
//! header), then the data. Nothing is copied: [`TensorView::bytes`] borrows from the file.
//! The data need not be aligned in memory; consumers read it as bytes (see `crate::simd`).

use alloc::string::String;
use alloc::vec::Vec;

use serde_json::Value;

use crate::error::Error;
use crate::tensor::MatF32;

/// Header larger than this is refused (the format's reference implementation uses 100 MB).
const MAX_HEADER: u64 = 100 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    F32,
    F16,
    BF16,
    I64,
    I32,
    I8,
    U8,
    /// Any other dtype string: the tensor is listed but cannot be used as a number.
    Other,
}

impl Dtype {
    fn parse(s: &str) -> Dtype {
        match s {
            "F32" => Dtype::F32,
            "F16" => Dtype::F16,
            "BF16" => Dtype::BF16,
            "I64" => Dtype::I64,
            "I32" => Dtype::I32,
            "I8" => Dtype::I8,
            "U8" => Dtype::U8,
            _ => Dtype::Other,
        }
    }
    fn size(self) -> Option<usize> {
        match self {
            Dtype::F32 | Dtype::I32 => Some(4),
            Dtype::F16 | Dtype::BF16 => Some(2),
            Dtype::I64 => Some(8),
            Dtype::I8 | Dtype::U8 => Some(1),
            Dtype::Other => None,
        }
    }
}

/// One tensor, borrowed from the file.
///
/// # Invariants
///
/// If the dtype has a known size, `bytes.len() == product(shape) * size` (checked by
/// [`SafeTensors::parse`]).
#[derive(Clone, Debug)]
pub struct TensorView<'a> {
    name: String,
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: &'a [u8],
}

impl<'a> TensorView<'a> {
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn dtype(&self) -> Dtype {
        self.dtype
    }
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
    /// As a 2-D f32 matrix of the given shape.
    pub fn matrix(&self, rows: usize, cols: usize) -> Result<MatF32<'a>, Error> {
        if self.dtype != Dtype::F32 || self.shape != [rows, cols] {
            return Err(Error::BadTensor("expected an F32 matrix of another shape"));
        }
        MatF32::new(rows, cols, self.bytes)
    }
    /// As an f32 vector of the given length, decoded (a copy: for small tensors only).
    pub fn vector(&self, len: usize) -> Result<Vec<f32>, Error> {
        if self.dtype != Dtype::F32 || self.shape != [len] {
            return Err(Error::BadTensor("expected an F32 vector of another length"));
        }
        Ok(MatF32::new(1, len, self.bytes)?.to_vec())
    }
}

/// The parsed header of a safetensors file, borrowing the file.
#[derive(Clone, Debug)]
pub struct SafeTensors<'a> {
    tensors: Vec<TensorView<'a>>,
}

impl<'a> SafeTensors<'a> {
    /// Parses and validates the header; fails on anything malformed, never panics.
    pub fn parse(file: &'a [u8]) -> Result<Self, Error> {
        let (len, rest) = file
            .split_first_chunk::<8>()
            .ok_or(Error::BadSafetensors("shorter than the 8-byte header length"))?;
        let n = u64::from_le_bytes(*len);
        if n > MAX_HEADER || n > rest.len() as u64 {
            return Err(Error::BadSafetensors("header length exceeds the file"));
        }
        let (header, data) = rest.split_at(n as usize);
        let json: Value = serde_json::from_slice(header)
            .map_err(|_| Error::BadSafetensors("header is not valid JSON"))?;
        let map = json.as_object().ok_or(Error::BadSafetensors("header is not a JSON object"))?;
        let mut tensors = Vec::with_capacity(map.len());
        for (name, info) in map {
            if name == "__metadata__" {
                continue;
            }
            tensors.push(Self::tensor(name, info, data)?);
        }
        Ok(SafeTensors { tensors })
    }

    fn tensor(name: &str, info: &Value, data: &'a [u8]) -> Result<TensorView<'a>, Error> {
        let bad = Error::BadSafetensors;
        let dtype = info
            .get("dtype")
            .and_then(Value::as_str)
            .map(Dtype::parse)
            .ok_or(bad("tensor without a dtype string"))?;
        let shape = info
            .get("shape")
            .and_then(Value::as_array)
            .ok_or(bad("tensor without a shape array"))?
            .iter()
            .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
            .collect::<Option<Vec<usize>>>()
            .ok_or(bad("shape entries must be unsigned integers"))?;
        let offs = info
            .get("data_offsets")
            .and_then(Value::as_array)
            .ok_or(bad("tensor without data_offsets"))?;
        let (begin, end) = match offs.as_slice() {
            [b, e] => (b.as_u64(), e.as_u64()),
            _ => return Err(bad("data_offsets must have two entries")),
        };
        let (begin, end) = match (begin, end) {
            (Some(b), Some(e)) if b <= e && e <= data.len() as u64 => (b as usize, e as usize),
            _ => return Err(bad("data_offsets out of range")),
        };
        let bytes = data.get(begin..end).ok_or(bad("data_offsets out of range"))?;
        if let Some(size) = dtype.size() {
            let want = shape.iter().try_fold(size, |a, &d| a.checked_mul(d));
            if want != Some(bytes.len()) {
                return Err(bad("tensor byte length does not match dtype and shape"));
            }
        }
        Ok(TensorView { name: name.into(), dtype, shape, bytes })
    }

    pub fn tensors(&self) -> &[TensorView<'a>] {
        &self.tensors
    }

    pub fn get(&self, name: &str) -> Result<&TensorView<'a>, Error> {
        self.tensors
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| Error::MissingTensor(name.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(header: &str, data: &[u8]) -> Vec<u8> {
        let mut f = (header.len() as u64).to_le_bytes().to_vec();
        f.extend_from_slice(header.as_bytes());
        f.extend_from_slice(data);
        f
    }

    #[test]
    fn parses_and_borrows() {
        let data: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0].iter().flat_map(|v| v.to_le_bytes()).collect();
        let f = file(
            r#"{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#,
            &data,
        );
        let st = SafeTensors::parse(&f).unwrap();
        let w = st.get("w").unwrap();
        assert_eq!(w.shape(), &[2, 2]);
        assert_eq!(w.vector(4).err(), Some(Error::BadTensor("expected an F32 vector of another length")));
        assert_eq!(w.matrix(2, 2).unwrap().to_vec(), [1.0, 2.0, 3.0, 4.0]);
        assert_eq!(st.get("nope").err(), Some(Error::MissingTensor("nope".into())));
    }

    #[test]
    fn rejects_malformed() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "shorter than the 8-byte header length"),
            (&[255; 8], "header length exceeds the file"),
        ];
        for (f, why) in cases {
            assert_eq!(SafeTensors::parse(f).err(), Some(Error::BadSafetensors(why)));
        }
        let bad = [
            (r#"[1]"#, "header is not a JSON object"),
            (r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}}"#, "data_offsets out of range"),
            (r#"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, "tensor byte length does not match dtype and shape"),
            (r#"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,8]}}"#, "shape entries must be unsigned integers"),
            (r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#, "data_offsets out of range"),
            (r#"{"w""#, "header is not valid JSON"),
        ];
        for (h, why) in bad {
            assert_eq!(SafeTensors::parse(&file(h, &[0; 8])).err(), Some(Error::BadSafetensors(why)), "{h}");
        }
    }
}
