//! OpenAI content parts as Converse content blocks: text, images, documents, cache points.
//!
//! - `text` → `{"text"}`; empty and whitespace-only text is dropped (Bedrock refuses it).
//! - `image_url` with a `data:image/{png,jpeg,gif,webp};base64,` URL → `{"image"}` with the
//!   payload as is. An `http(s)://` URL is fetched by the host through `outbound-http` without
//!   credentials, under the plugin's egress policy: only the hosts the plugin declares
//!   (`*.amazonaws.com` — S3 presigned URLs — and `*.api.aws`) and the endpoint hosts the
//!   operator set through `AWS_ENDPOINT_URL*`; any other host is a 400 that says to send a
//!   data URL. The format comes from the answer's `content-type`, else from the bytes.
//! - `file` with `file_data` (a data URL) → `{"document"}`, its format from the MIME type or
//!   the file name's extension, its name made of the characters Bedrock allows and made
//!   unique within the request; `file_id` is refused (ogx has no files API for plugins).
//! - `cache_control` on a part (any role) → a `{"cachePoint": {"type": "default"}}` after it.
//! - `input_audio` and other part types are refused with a 400 naming the type.

use std::collections::HashSet;

use ogx_provider_sdk::{ProviderError, Value};
use serde_json::json;

/// Fetches an image URL: `(content-type, bytes)`.
pub type FetchImage<'a> = &'a dyn Fn(&str) -> Result<(Option<String>, Vec<u8>), ProviderError>;

/// The cache point Converse takes in messages, `system` and `toolConfig.tools`.
pub fn cache_point() -> Value {
    json!({"cachePoint": {"type": "default"}})
}

/// Document names already used in the request (Bedrock refuses duplicates).
#[derive(Debug, Default)]
pub struct DocumentNames(HashSet<String>);

fn bad(message: impl Into<String>) -> ProviderError {
    ProviderError::InvalidRequest(message.into())
}

/// The blocks of one message's `content` (a string or a list of parts).
pub fn blocks(
    content: &Value,
    fetch: FetchImage,
    names: &mut DocumentNames,
) -> Result<Vec<Value>, ProviderError> {
    let mut out = Vec::new();
    match content {
        Value::Null => {}
        Value::String(text) => push_text(&mut out, text),
        Value::Array(parts) => {
            for part in parts {
                part_blocks(part, fetch, names, &mut out)?;
                if part.get("cache_control").is_some_and(|c| !c.is_null()) {
                    out.push(cache_point());
                }
            }
        }
        _ => {
            return Err(bad(
                "message content must be a string or a list of content parts",
            ));
        }
    }
    Ok(out)
}

/// Text parts only, joined (tool results and system prompts).
pub fn text_of(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

fn push_text(out: &mut Vec<Value>, text: &str) {
    if !text.trim().is_empty() {
        out.push(json!({"text": text}));
    }
}

fn part_blocks(
    part: &Value,
    fetch: FetchImage,
    names: &mut DocumentNames,
    out: &mut Vec<Value>,
) -> Result<(), ProviderError> {
    let kind = part.get("type").and_then(Value::as_str).unwrap_or("text");
    match kind {
        "text" | "input_text" | "output_text" | "refusal" => {
            let text = ["text", "refusal"]
                .iter()
                .find_map(|k| part.get(*k).and_then(Value::as_str))
                .unwrap_or_default();
            push_text(out, text);
        }
        "image_url" => {
            let url = part
                .pointer("/image_url/url")
                .or_else(|| part.get("image_url"))
                .and_then(Value::as_str)
                .ok_or_else(|| bad("an image_url part needs image_url.url"))?;
            out.push(image(url, fetch)?);
        }
        "file" => out.push(document(part.get("file").unwrap_or(&Value::Null), names)?),
        other => {
            return Err(bad(format!(
                "content parts of type `{other}` cannot be sent to a Converse model (text, image_url and file can)"
            )));
        }
    }
    Ok(())
}

/// `data:<mime>;base64,<payload>` → (mime, payload).
fn data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, payload) = rest.split_once(',')?;
    let mime = meta.strip_suffix(";base64")?;
    Some((mime, payload))
}

fn image_format(mime: &str) -> Option<&'static str> {
    match mime.split(';').next()?.trim().to_ascii_lowercase().as_str() {
        "image/png" => Some("png"),
        "image/jpeg" | "image/jpg" => Some("jpeg"),
        "image/gif" => Some("gif"),
        "image/webp" => Some("webp"),
        _ => None,
    }
}

fn sniff_image(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("jpeg")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("gif")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("webp")
    } else {
        None
    }
}

const IMAGE_FORMATS: &str = "png, jpeg, gif or webp";

fn image(url: &str, fetch: FetchImage) -> Result<Value, ProviderError> {
    let (format, payload) = if let Some((mime, payload)) = data_url(url) {
        let format = image_format(mime).ok_or_else(|| {
            bad(format!(
                "image type `{mime}` is not supported by Converse (send {IMAGE_FORMATS})"
            ))
        })?;
        (format, payload.to_string())
    } else if url.starts_with("https://") || url.starts_with("http://") {
        let (content_type, bytes) = fetch(url)?;
        let format = content_type
            .as_deref()
            .and_then(image_format)
            .or_else(|| sniff_image(&bytes))
            .ok_or_else(|| bad(format!("the image at {url} is not {IMAGE_FORMATS}")))?;
        (format, crate::base64::encode(&bytes))
    } else {
        return Err(bad("an image URL must be a data: URL or an http(s):// URL"));
    };
    if payload.is_empty() {
        return Err(bad("an image must not be empty"));
    }
    Ok(json!({"image": {"format": format, "source": {"bytes": payload}}}))
}

fn document_format(mime: &str, filename: &str) -> Option<&'static str> {
    let by_mime = match mime.to_ascii_lowercase().as_str() {
        "application/pdf" => Some("pdf"),
        "text/csv" => Some("csv"),
        "application/msword" => Some("doc"),
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => Some("docx"),
        "application/vnd.ms-excel" => Some("xls"),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => Some("xlsx"),
        "text/html" => Some("html"),
        "text/plain" => Some("txt"),
        "text/markdown" => Some("md"),
        _ => None,
    };
    by_mime.or_else(|| {
        let ext = filename.rsplit_once('.')?.1.to_ascii_lowercase();
        [
            "pdf", "csv", "doc", "docx", "xls", "xlsx", "html", "txt", "md",
        ]
        .into_iter()
        .find(|f| *f == ext)
    })
}

fn document(file: &Value, names: &mut DocumentNames) -> Result<Value, ProviderError> {
    if file.get("file_id").is_some_and(|f| !f.is_null()) {
        return Err(bad(
            "file parts with a file_id cannot be sent to a Converse model; send the file as file_data (a data: URL)",
        ));
    }
    let data = file
        .get("file_data")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("a file part needs file.file_data (a data: URL)"))?;
    let filename = file
        .get("filename")
        .and_then(Value::as_str)
        .unwrap_or("document");
    let (mime, payload) =
        data_url(data).ok_or_else(|| bad("file.file_data must be a base64 data: URL"))?;
    let format = document_format(mime, filename).ok_or_else(|| {
        bad(format!(
            "document type `{mime}` ({filename}) is not supported by Converse (pdf, csv, doc, docx, xls, xlsx, html, txt, md)"
        ))
    })?;
    Ok(
        json!({"document": {"format": format, "name": names.unique(filename), "source": {"bytes": payload}}}),
    )
}

impl DocumentNames {
    /// A name Bedrock accepts (letters, digits, single spaces, `-()[]`), unique so far.
    fn unique(&mut self, filename: &str) -> String {
        let stem = filename.rsplit_once('.').map_or(filename, |(stem, _)| stem);
        let mut name = String::new();
        for c in stem.chars() {
            let c = if c.is_ascii_alphanumeric() || "-()[]".contains(c) {
                c
            } else {
                ' '
            };
            if !(c == ' ' && (name.is_empty() || name.ends_with(' '))) {
                name.push(c);
            }
        }
        let base = match name.trim_end() {
            "" => "document".to_string(),
            trimmed => trimmed.to_string(),
        };
        let mut candidate = base.clone();
        let mut n = 2;
        while !self.0.insert(candidate.clone()) {
            candidate = format!("{base} ({n})");
            n += 1;
        }
        candidate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_fetch(url: &str) -> Result<(Option<String>, Vec<u8>), ProviderError> {
        panic!("unexpected fetch of {url}")
    }

    #[test]
    fn text_images_documents_and_cache_points() {
        let content = json!([
            {"type": "text", "text": "look", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "  "},
            {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/AA=="}},
            {"type": "file", "file": {"filename": "Q3 report.final.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}},
            {"type": "file", "file": {"filename": "Q3 report.final.txt", "file_data": "data:text/plain;base64,aGk="}},
        ]);
        let mut names = DocumentNames::default();
        let got = blocks(&content, &no_fetch, &mut names).unwrap();
        assert_eq!(
            Value::Array(got),
            json!([
                {"text": "look"},
                {"cachePoint": {"type": "default"}},
                {"image": {"format": "jpeg", "source": {"bytes": "/9j/AA=="}}},
                {"document": {"format": "pdf", "name": "Q3 report final", "source": {"bytes": "JVBERi0="}}},
                {"document": {"format": "txt", "name": "Q3 report final (2)", "source": {"bytes": "aGk="}}},
            ])
        );
        assert_eq!(
            blocks(&json!(""), &no_fetch, &mut names).unwrap(),
            Vec::<Value>::new()
        );
    }

    #[test]
    fn fetched_images_take_their_format_from_the_answer_or_the_bytes() {
        let fetch = |url: &str| -> Result<(Option<String>, Vec<u8>), ProviderError> {
            match url {
                "https://b.s3.amazonaws.com/cat.png" => {
                    Ok((Some("image/png".into()), b"png!".to_vec()))
                }
                _ => Ok((
                    Some("application/octet-stream".into()),
                    b"GIF89a..".to_vec(),
                )),
            }
        };
        let parts = json!([
            {"type": "image_url", "image_url": {"url": "https://b.s3.amazonaws.com/cat.png"}},
            {"type": "image_url", "image_url": {"url": "https://b.s3.amazonaws.com/x"}},
        ]);
        let got = blocks(&parts, &fetch, &mut DocumentNames::default()).unwrap();
        assert_eq!(got[0]["image"]["format"], "png");
        assert_eq!(
            got[0]["image"]["source"]["bytes"],
            crate::base64::encode(b"png!")
        );
        assert_eq!(got[1]["image"]["format"], "gif");
    }

    #[test]
    fn refusals_say_what_to_send() {
        let cases = [
            (
                json!([{"type": "image_url", "image_url": {"url": "data:image/bmp;base64,AA"}}]),
                "image/bmp",
            ),
            (
                json!([{"type": "image_url", "image_url": {"url": "ftp://x"}}]),
                "data: URL",
            ),
            (
                json!([{"type": "input_audio", "input_audio": {}}]),
                "input_audio",
            ),
            (
                json!([{"type": "file", "file": {"file_id": "file-1"}}]),
                "file_data",
            ),
            (
                json!([{"type": "file", "file": {"filename": "a.exe", "file_data": "data:application/x-exe;base64,AA"}}]),
                "a.exe",
            ),
            (json!(42), "string or a list"),
        ];
        for (content, want) in cases {
            let err = blocks(&content, &no_fetch, &mut DocumentNames::default()).unwrap_err();
            assert!(matches!(err, ProviderError::InvalidRequest(_)), "{err:?}");
            assert!(err.message().contains(want), "{content}: {err}");
        }
    }
}
