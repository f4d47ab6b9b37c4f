//! `/v1/embeddings` through Bedrock's `InvokeModel` (`POST /model/{modelId}/invoke`).
//!
//! - Amazon Titan Text Embeddings (`amazon.titan-embed-text-*`; `amazon.titan-embed-g1-text-*`)
//!   embed one text per call: `{"inputText", "dimensions"?, "normalize": true}` (v2 only takes
//!   `dimensions`: 256, 512 or 1024), answered with `{"embedding", "inputTextTokenCount"}`.
//! - Cohere Embed (`cohere.embed-*`, v3 and v4) embeds the whole list in one call:
//!   `{"texts", "input_type", "embedding_types": ["float"], "output_dimension"?}` (v4 only),
//!   answered with `{"embeddings": {"float": [...]}}` (or a bare list); tokens from the
//!   `x-amzn-bedrock-input-token-count` header. `input_type` defaults to
//!   `search_document`; the request's extra `input_type` (e.g. `search_query`) wins.
//!
//! `encoding_format: base64` answers each vector as base64 of little-endian f32s, as OpenAI
//! does. Token-id inputs are refused (Bedrock embeds text). Any other model is a 400 that
//! names the supported families.

use ogx_provider_sdk::{ProviderError, Value};
use serde_json::json;

/// One InvokeModel call to make: the body, and how to read its answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    /// The InvokeModel body.
    pub body: Value,
    /// How many of the request's inputs the answer embeds.
    pub inputs: usize,
}

/// The embedding family of a model id, if it is one this plugin can call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Amazon Titan Text Embeddings v2 (takes `dimensions`).
    TitanV2,
    /// Amazon Titan Text Embeddings v1 / G1.
    TitanV1,
    /// Cohere Embed v3 (no output dimension).
    CohereV3,
    /// Cohere Embed v4 (`output_dimension`).
    CohereV4,
}

impl Family {
    /// The family of `model` (ids, inference profiles and ARNs).
    pub fn of(model: &str) -> Option<Family> {
        let base = model.rsplit('/').next().unwrap_or(model);
        let base = crate::routing::strip_profile_prefix(base);
        if base.starts_with("amazon.titan-embed-text-v2") {
            Some(Family::TitanV2)
        } else if base.starts_with("amazon.titan-embed-text")
            || base.starts_with("amazon.titan-embed-g1-text")
        {
            Some(Family::TitanV1)
        } else if base.starts_with("cohere.embed-v4") {
            Some(Family::CohereV4)
        } else if base.starts_with("cohere.embed-") {
            Some(Family::CohereV3)
        } else {
            None
        }
    }
}

fn bad(message: impl Into<String>) -> ProviderError {
    ProviderError::InvalidRequest(message.into())
}

/// The InvokeModel calls for an OpenAI embeddings request.
pub fn invocations(request: &Value, family: Family) -> Result<Vec<Invocation>, ProviderError> {
    let texts: Vec<String> = match request.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|item| {
                item.as_str().map(str::to_string).ok_or_else(|| {
                    bad("input must be a string or a list of strings: Bedrock embedding models take text, not token ids")
                })
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(bad("input must be a non-empty string or list of strings")),
    };
    let dimensions = request.get("dimensions").and_then(Value::as_u64);
    match family {
        Family::TitanV2 | Family::TitanV1 => {
            if dimensions.is_some() && family == Family::TitanV1 {
                return Err(bad(
                    "dimensions is not supported by Titan Text Embeddings v1",
                ));
            }
            if let Some(d) = dimensions.filter(|d| ![256, 512, 1024].contains(d)) {
                return Err(bad(format!(
                    "dimensions must be 256, 512 or 1024 for Titan Text Embeddings v2, not {d}"
                )));
            }
            Ok(texts
                .into_iter()
                .map(|text| {
                    let mut body = json!({"inputText": text});
                    if family == Family::TitanV2 {
                        body["normalize"] = json!(true);
                        if let Some(d) = dimensions {
                            body["dimensions"] = json!(d);
                        }
                    }
                    Invocation { body, inputs: 1 }
                })
                .collect())
        }
        Family::CohereV3 | Family::CohereV4 => {
            if dimensions.is_some() && family == Family::CohereV3 {
                return Err(bad(
                    "dimensions is not supported by Cohere Embed v3 (v4 takes 256, 512, 1024 or 1536)",
                ));
            }
            let input_type = request
                .get("input_type")
                .and_then(Value::as_str)
                .unwrap_or("search_document");
            let mut body =
                json!({"texts": texts, "input_type": input_type, "embedding_types": ["float"]});
            if let Some(d) = dimensions {
                body["output_dimension"] = json!(d);
            }
            Ok(vec![Invocation {
                body,
                inputs: texts.len(),
            }])
        }
    }
}

/// The vectors of one InvokeModel answer, and the tokens it counted (if it says).
pub fn vectors(
    answer: &Value,
    family: Family,
) -> Result<(Vec<Vec<f64>>, Option<u64>), ProviderError> {
    let as_vector =
        |v: &Value| -> Option<Vec<f64>> { v.as_array()?.iter().map(Value::as_f64).collect() };
    let unreadable = || {
        ProviderError::BadGateway("the embedding model answered without readable embeddings".into())
    };
    match family {
        Family::TitanV2 | Family::TitanV1 => {
            let vector = answer
                .get("embedding")
                .and_then(as_vector)
                .ok_or_else(unreadable)?;
            Ok((
                vec![vector],
                answer.get("inputTextTokenCount").and_then(Value::as_u64),
            ))
        }
        Family::CohereV3 | Family::CohereV4 => {
            let list = answer.get("embeddings").ok_or_else(unreadable)?;
            let list = list.get("float").unwrap_or(list);
            let vectors = list
                .as_array()
                .ok_or_else(unreadable)?
                .iter()
                .map(|v| as_vector(v).ok_or_else(unreadable))
                .collect::<Result<_, _>>()?;
            Ok((vectors, None))
        }
    }
}

/// The OpenAI embeddings list.
pub fn openai_list(vectors: Vec<Vec<f64>>, model: &str, tokens: u64, base64: bool) -> Value {
    let data: Vec<Value> = vectors
        .into_iter()
        .enumerate()
        .map(|(index, vector)| {
            let embedding = if base64 {
                let bytes: Vec<u8> = vector
                    .iter()
                    .flat_map(|x| (*x as f32).to_le_bytes())
                    .collect();
                json!(crate::base64::encode(&bytes))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    json!({"object": "list", "data": data, "model": model,
           "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families() {
        let cases = [
            ("amazon.titan-embed-text-v2:0", Some(Family::TitanV2)),
            ("amazon.titan-embed-text-v1", Some(Family::TitanV1)),
            ("cohere.embed-english-v3", Some(Family::CohereV3)),
            ("cohere.embed-multilingual-v3", Some(Family::CohereV3)),
            ("cohere.embed-v4:0", Some(Family::CohereV4)),
            ("us.cohere.embed-v4:0", Some(Family::CohereV4)),
            (
                "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-embed-text-v2:0",
                Some(Family::TitanV2),
            ),
            ("anthropic.claude-3-haiku-20240307-v1:0", None),
        ];
        for (model, want) in cases {
            assert_eq!(Family::of(model), want, "{model}");
        }
    }

    #[test]
    fn titan_calls_one_per_text() {
        let calls = invocations(
            &json!({"input": ["a", "b"], "dimensions": 256}),
            Family::TitanV2,
        )
        .unwrap();
        assert_eq!(
            calls,
            vec![
                Invocation {
                    body: json!({"inputText": "a", "normalize": true, "dimensions": 256}),
                    inputs: 1
                },
                Invocation {
                    body: json!({"inputText": "b", "normalize": true, "dimensions": 256}),
                    inputs: 1
                },
            ]
        );
        let (v, tokens) = vectors(
            &json!({"embedding": [0.5, -1.0], "inputTextTokenCount": 3}),
            Family::TitanV2,
        )
        .unwrap();
        assert_eq!((v, tokens), (vec![vec![0.5, -1.0]], Some(3)));
    }

    #[test]
    fn cohere_calls_once() {
        let calls = invocations(
            &json!({"input": "a", "input_type": "search_query", "dimensions": 512}),
            Family::CohereV4,
        )
        .unwrap();
        assert_eq!(
            calls[0].body,
            json!({"texts": ["a"], "input_type": "search_query", "embedding_types": ["float"], "output_dimension": 512})
        );
        let (v, _) = vectors(
            &json!({"embeddings": {"float": [[1.0], [2.0]]}}),
            Family::CohereV3,
        )
        .unwrap();
        assert_eq!(v, vec![vec![1.0], vec![2.0]]);
        let (v, _) = vectors(&json!({"embeddings": [[3.0]]}), Family::CohereV3).unwrap();
        assert_eq!(v, vec![vec![3.0]]);
        assert!(vectors(&json!({"nope": 1}), Family::CohereV3).is_err());
    }

    #[test]
    fn refusals() {
        let cases = [
            (json!({"input": [1, 2]}), Family::TitanV2, "token ids"),
            (json!({"input": []}), Family::TitanV2, "non-empty"),
            (
                json!({"input": "a", "dimensions": 300}),
                Family::TitanV2,
                "256, 512 or 1024",
            ),
            (
                json!({"input": "a", "dimensions": 256}),
                Family::TitanV1,
                "v1",
            ),
            (
                json!({"input": "a", "dimensions": 256}),
                Family::CohereV3,
                "v3",
            ),
        ];
        for (request, family, want) in cases {
            let err = invocations(&request, family).unwrap_err();
            assert!(err.message().contains(want), "{request}: {err}");
        }
    }

    #[test]
    fn openai_list_and_base64() {
        let list = openai_list(vec![vec![1.0, -2.0]], "m", 4, true);
        let mut expected = Vec::new();
        expected.extend_from_slice(&1.0f32.to_le_bytes());
        expected.extend_from_slice(&(-2.0f32).to_le_bytes());
        assert_eq!(
            list["data"][0]["embedding"],
            crate::base64::encode(&expected)
        );
        assert_eq!(
            list["usage"],
            json!({"prompt_tokens": 4, "total_tokens": 4})
        );
        let list = openai_list(vec![vec![0.25]], "m", 0, false);
        assert_eq!(
            list["data"][0],
            json!({"object": "embedding", "index": 0, "embedding": [0.25]})
        );
    }
}
