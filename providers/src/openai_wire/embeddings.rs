//! The OpenAI `POST /v1/embeddings` JSON shape, in and out: the OpenAI and
//! OpenAI-compatible adapters send it, the gateway serves it, the fake
//! upstream answers it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::types::{EmbedRequest, EmbedResponse, Usage};

/// `POST /v1/embeddings` request body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingsRequest {
    /// The model id (at the gateway: the workload or its alias).
    pub model: String,
    /// One text, several texts, or token ids.
    pub input: EmbeddingInput,
    /// `"float"` (the default) or `"base64"` (little-endian `f32`s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding_format: Option<String>,
    /// The vectors' length, for models that can shorten them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
    /// The end user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// What `input` may hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EmbeddingInput {
    /// One text.
    One(String),
    /// Several texts.
    Many(Vec<String>),
    /// One text as token ids.
    Tokens(Vec<u32>),
    /// Several texts as token ids.
    TokenLists(Vec<Vec<u32>>),
}

/// How the vectors are written in a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EmbeddingEncoding {
    /// JSON arrays of numbers.
    #[default]
    Float,
    /// Base64 of the little-endian `f32` bytes: what the official SDKs ask
    /// for by default (a quarter of the bytes of the JSON numbers).
    Base64,
}

/// `POST /v1/embeddings` response body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingsResponse {
    /// Always `"list"`.
    #[serde(default = "list")]
    pub object: String,
    /// One entry per input, with its index.
    pub data: Vec<EmbeddingData>,
    /// The model that answered.
    #[serde(default)]
    pub model: String,
    /// Tokens billed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<EmbeddingsUsage>,
}

fn list() -> String {
    "list".to_owned()
}

/// One vector of a response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingData {
    /// Always `"embedding"`.
    #[serde(default = "embedding")]
    pub object: String,
    /// The input's position.
    pub index: usize,
    /// The vector.
    pub embedding: EmbeddingVector,
}

fn embedding() -> String {
    "embedding".to_owned()
}

/// A vector as numbers or as base64.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EmbeddingVector {
    /// `[0.1, -0.2, …]`.
    Float(Vec<f32>),
    /// Base64 of the little-endian `f32` bytes.
    Base64(String),
}

/// An embeddings response's usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbeddingsUsage {
    /// Input tokens.
    pub prompt_tokens: u64,
    /// The same number: embeddings have no output tokens.
    pub total_tokens: u64,
}

/// Why a wire request cannot become an [`EmbedRequest`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmbeddingsRequestError {
    /// Token ids rather than text: the router cannot know which tokenizer
    /// they belong to, and the fallback may use another.
    #[error("`input` as token ids is not supported: send the text")]
    TokenInput,
    /// No text at all.
    #[error("`input` is empty")]
    Empty,
    /// An encoding other than `float` and `base64`.
    #[error("`encoding_format` must be `float` or `base64`, not `{0}`")]
    Encoding(String),
}

impl EmbeddingsRequest {
    /// The normalised request and the encoding the client wants back.
    pub fn to_normalised(&self) -> Result<(EmbedRequest, EmbeddingEncoding), EmbeddingsRequestError> {
        let input = match &self.input {
            EmbeddingInput::One(text) => vec![text.clone()],
            EmbeddingInput::Many(texts) => texts.clone(),
            EmbeddingInput::Tokens(_) | EmbeddingInput::TokenLists(_) => {
                return Err(EmbeddingsRequestError::TokenInput);
            }
        };
        if input.is_empty() {
            return Err(EmbeddingsRequestError::Empty);
        }
        let encoding = match self.encoding_format.as_deref() {
            None | Some("float") => EmbeddingEncoding::Float,
            Some("base64") => EmbeddingEncoding::Base64,
            Some(other) => return Err(EmbeddingsRequestError::Encoding(other.to_owned())),
        };
        Ok((
            EmbedRequest {
                input,
                dimensions: self.dimensions,
                user: self.user.clone(),
            },
            encoding,
        ))
    }

    /// The body an adapter sends upstream: floats, which every compatible
    /// server speaks.
    pub fn from_normalised(model: &str, req: &EmbedRequest) -> Self {
        EmbeddingsRequest {
            model: model.to_owned(),
            input: EmbeddingInput::Many(req.input.clone()),
            encoding_format: Some("float".to_owned()),
            dimensions: req.dimensions,
            user: req.user.clone(),
        }
    }
}

impl EmbeddingsResponse {
    /// The wire response for `resp`, vectors written as `encoding`, under
    /// the model name `model` (the gateway answers with the workload's).
    pub fn from_normalised(resp: &EmbedResponse, model: &str, encoding: EmbeddingEncoding) -> Self {
        let data = resp
            .vectors
            .iter()
            .enumerate()
            .map(|(index, v)| EmbeddingData {
                object: embedding(),
                index,
                embedding: match encoding {
                    EmbeddingEncoding::Float => EmbeddingVector::Float(v.clone()),
                    EmbeddingEncoding::Base64 => EmbeddingVector::Base64(base64_of(v)),
                },
            })
            .collect();
        EmbeddingsResponse {
            object: list(),
            data,
            model: model.to_owned(),
            usage: Some(EmbeddingsUsage {
                prompt_tokens: resp.usage.input_tokens,
                total_tokens: resp.usage.input_tokens,
            }),
        }
    }

    /// The vectors in input order, or what is wrong with them: an index out
    /// of range or given twice, a gap, or a vector in base64 that does not
    /// decode. `None` usage stays `None`: the caller estimates it.
    pub fn into_vectors(self) -> Result<DecodedEmbeddings, String> {
        let n = self.data.len();
        let mut vectors: Vec<Option<Vec<f32>>> = vec![None; n];
        for d in self.data {
            let v = match d.embedding {
                EmbeddingVector::Float(v) => v,
                EmbeddingVector::Base64(s) => floats_of_base64(&s).ok_or("a base64 vector does not decode")?,
            };
            match vectors.get_mut(d.index) {
                Some(slot @ None) => *slot = Some(v),
                Some(Some(_)) => return Err(format!("index {} given twice", d.index)),
                None => return Err(format!("index {} out of range for {n} vectors", d.index)),
            }
        }
        let vectors = vectors
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .ok_or("a vector is missing")?;
        let usage = self.usage.map(|u| Usage {
            input_tokens: u.prompt_tokens,
            output_tokens: 0,
            cached_tokens: 0,
        });
        Ok(DecodedEmbeddings {
            model: self.model,
            vectors,
            usage,
        })
    }
}

/// A response's vectors in input order, as [`EmbeddingsResponse::into_vectors`] reads them.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedEmbeddings {
    /// The model the response names (may be empty).
    pub model: String,
    /// One vector per input, in input order.
    pub vectors: Vec<Vec<f32>>,
    /// The usage, when the response has one.
    pub usage: Option<Usage>,
}

/// Standard base64 (with padding) of the vector's little-endian bytes.
pub fn base64_of(v: &[f32]) -> String {
    let bytes: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
    STANDARD.encode(bytes)
}

/// The vector in a base64 string of little-endian `f32`s; `None` when it
/// is not base64 or not a whole number of `f32`s.
pub fn floats_of_base64(s: &str) -> Option<Vec<f32>> {
    let bytes = STANDARD.decode(s).ok()?;
    if bytes.len() % 4 != 0 {
        return None;
    }
    Some(
        bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_and_matches_a_known_encoding() {
        // 1.0f32 is 00 00 80 3f little-endian.
        assert_eq!(base64_of(&[1.0]), "AACAPw==");
        for v in [vec![], vec![0.5], vec![1.0, -2.5], vec![0.1, 0.2, 0.3, -0.4, 1e-7]] {
            assert_eq!(floats_of_base64(&base64_of(&v)), Some(v));
        }
        assert_eq!(floats_of_base64("AACA"), None, "three bytes are not an f32");
        assert_eq!(floats_of_base64("AA!A"), None);
    }

    #[test]
    fn requests_take_text_and_refuse_token_ids() {
        let one: EmbeddingsRequest =
            serde_json::from_str(r#"{"model":"m","input":"hello","encoding_format":"base64"}"#).unwrap();
        let (req, enc) = one.to_normalised().unwrap();
        assert_eq!((req.input, enc), (vec!["hello".to_owned()], EmbeddingEncoding::Base64));
        let tokens: EmbeddingsRequest = serde_json::from_str(r#"{"model":"m","input":[1,2,3]}"#).unwrap();
        assert_eq!(tokens.to_normalised(), Err(EmbeddingsRequestError::TokenInput));
        let empty: EmbeddingsRequest = serde_json::from_str(r#"{"model":"m","input":[]}"#).unwrap();
        assert_eq!(empty.to_normalised(), Err(EmbeddingsRequestError::Empty));
        let odd: EmbeddingsRequest =
            serde_json::from_str(r#"{"model":"m","input":"x","encoding_format":"int8"}"#).unwrap();
        assert!(matches!(odd.to_normalised(), Err(EmbeddingsRequestError::Encoding(_))));
    }

    #[test]
    fn responses_are_put_in_input_order_and_gaps_are_errors() {
        let body = r#"{"object":"list","model":"e","data":[
            {"object":"embedding","index":1,"embedding":[2.0]},
            {"object":"embedding","index":0,"embedding":"AACAPw=="}],
            "usage":{"prompt_tokens":4,"total_tokens":4}}"#;
        let wire: EmbeddingsResponse = serde_json::from_str(body).unwrap();
        let got = wire.into_vectors().unwrap();
        assert_eq!((got.model.as_str(), got.vectors), ("e", vec![vec![1.0], vec![2.0]]));
        assert_eq!(got.usage.map(|u| u.input_tokens), Some(4));
        let gap = r#"{"data":[{"index":0,"embedding":[1.0]},{"index":2,"embedding":[1.0]}]}"#;
        let wire: EmbeddingsResponse = serde_json::from_str(gap).unwrap();
        assert!(wire.into_vectors().unwrap_err().contains("out of range"));
        let twice = r#"{"data":[{"index":0,"embedding":[1.0]},{"index":0,"embedding":[1.0]}]}"#;
        let wire: EmbeddingsResponse = serde_json::from_str(twice).unwrap();
        assert!(wire.into_vectors().unwrap_err().contains("twice"));
    }
}
