//! The glue between the WIT imports and the host-native import implementations: each host
//! trait method converts the generated WIT types, delegates to one function of the import
//! (`OutboundClient::send`, `EnvView::get`, ...), and converts back. No policy lives here.
//! Every interface version served gets the same implementation (a macro over its generated
//! types); only `outbound-http`'s `auth` differs between versions.
//!
//! The credentials a plugin sends upstream are added to its request's secrets
//! ([`crate::secrets`]) before the request goes out.
//!
//! Also the WASI stdout/stderr sink: a plugin's `println!` becomes log lines of its provider.
//!
//! Expected failures are WIT error values. The guest traps only on a host invariant violation
//! (an unknown `body-stream` handle) or when an import is called from `describe`, which must
//! not call imports (there is no provider to act for yet).

use super::bindings::{since_v0_1, since_v0_2};
use super::instance::HostState;
use crate::imports::{http as native_http, kv as native_kv, logging as native_log};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use wasmtime::component::Resource;

/// The host side of a `body-stream` resource (the same in every interface version).
pub struct BodyStreamHandle(native_http::BodyStream);

impl HostState {
    fn handles(&self) -> wasmtime::Result<&Arc<super::instance::ProviderHandles>> {
        self.handles.as_ref().ok_or_else(|| {
            wasmtime::format_err!(
                "the plugin called an import from `describe`, which must not call imports"
            )
        })
    }

    /// Adds the credentials a plugin sends upstream (a bearer token, credential header
    /// values) to the request's secrets, so that an upstream echoing them is scrubbed.
    fn remember_credentials(&self, request: &native_http::OutboundRequest) {
        let request_id = &self.logger.request_id;
        if let native_http::Auth::Bearer(token) = &request.auth {
            crate::secrets::add_for_request(request_id, token);
        }
        for (name, value) in &request.headers {
            if crate::secrets::is_credential_header(name) {
                for form in crate::secrets::forms(value) {
                    crate::secrets::add_for_request(request_id, &form);
                }
            }
        }
    }

    /// The outbound timeout: the plugin's wish, capped at the time left for the call.
    fn outbound_timeout(&self, wish_ms: Option<u32>) -> Duration {
        let left = self.request.time_left();
        wish_ms.map_or(left, |ms| Duration::from_millis(ms.into()).min(left))
    }
}

/// The `aws-signing` record, the same in every version, in host types.
macro_rules! aws_signing {
    ($s:expr) => {{
        let s = $s;
        native_http::AwsSigning {
            service: s.service,
            region: s.region,
            credentials: native_http::AwsCredentialSource {
                profile_name: s.credentials.profile_name,
                role_arn: s.credentials.role_arn,
                web_identity_token_file: s.credentials.web_identity_token_file,
                role_session_name: s.credentials.role_session_name,
                session_ttl_seconds: s.credentials.session_ttl_seconds,
            },
        }
    }};
}

/// `auth` of 0.1.0: none, bearer, AWS SigV4.
fn auth_v0_1(auth: since_v0_1::ogx::provider::outbound_http::Auth) -> native_http::Auth {
    use since_v0_1::ogx::provider::outbound_http::Auth;
    match auth {
        Auth::None => native_http::Auth::None,
        Auth::Bearer(token) => native_http::Auth::Bearer(token),
        Auth::AwsSigv4(s) => native_http::Auth::AwsSigV4(aws_signing!(s)),
    }
}

/// `auth` of 0.2.0: 0.1.0's, OCI request signing, and the credential sources of the other
/// clouds, which this host does not offer yet (the request fails with `credentials`, naming
/// the source).
fn auth_v0_2(auth: since_v0_2::ogx::provider::outbound_http::Auth) -> native_http::Auth {
    use since_v0_2::ogx::provider::outbound_http::Auth;
    match auth {
        Auth::None => native_http::Auth::None,
        Auth::Bearer(token) => native_http::Auth::Bearer(token),
        Auth::AwsSigv4(s) => native_http::Auth::AwsSigV4(aws_signing!(s)),
        Auth::GoogleAccessToken(_) => native_http::Auth::Unavailable("Google access tokens"),
        Auth::AzureEntraId(_) => native_http::Auth::Unavailable("Azure Entra ID tokens"),
        Auth::IbmIam(_) => native_http::Auth::Unavailable("IBM Cloud IAM tokens"),
        Auth::OciSignature(source) => native_http::Auth::OciSignature(oci_source(source)),
    }
}

/// 0.2.0's `oci-credential-source` in host types.
fn oci_source(
    source: since_v0_2::ogx::provider::outbound_http::OciCredentialSource,
) -> native_http::OciCredentialSource {
    use since_v0_2::ogx::provider::outbound_http::OciCredentialSource as Source;
    match source {
        Source::ConfigFile(p) => native_http::OciCredentialSource::ConfigFile {
            file: p.file,
            profile: p.profile,
        },
        Source::InstancePrincipal => native_http::OciCredentialSource::InstancePrincipal,
    }
}

/// The host traits of one interface version's imports. Every version's `config`, `logging`,
/// `kv` and `outbound-http` have the same shape but their own generated types, so one body
/// serves them all; only `auth` differs, converted by `$auth`.
macro_rules! version_imports {
    ($module:ident, $v:ident, $auth:path) => {
        mod $module {
            use super::*;
            use crate::runtime::bindings::$v::ogx::provider::{
                config, kv, logging, outbound_http as wit_http, types,
            };

            fn to_native_request(
                req: wit_http::Request,
                timeout: Duration,
                request: &crate::runtime::instance::RequestState,
            ) -> native_http::OutboundRequest {
                use wit_http::Method;
                native_http::OutboundRequest {
                    method: match req.method {
                        Method::Get => native_http::Method::Get,
                        Method::Post => native_http::Method::Post,
                        Method::Put => native_http::Method::Put,
                        Method::Patch => native_http::Method::Patch,
                        Method::Delete => native_http::Method::Delete,
                        Method::Head => native_http::Method::Head,
                    },
                    url: req.url,
                    headers: req.headers,
                    body: req.body,
                    auth: $auth(req.auth),
                    timeout: Some(timeout),
                    clock: request.upstream_clock.clone(),
                    trace: request.trace.clone(),
                }
            }

            fn to_wit_http_error(e: native_http::HttpError) -> wit_http::HttpError {
                use native_http::HttpError as N;
                use wit_http::HttpError as W;
                match e {
                    N::Denied(m) => W::Denied(m),
                    N::InvalidRequest(m) => W::InvalidRequest(m),
                    N::Connect(m) => W::Connect(m),
                    N::Timeout(m) => W::Timeout(m),
                    N::Credentials(m) => W::Credentials(m),
                    N::Protocol(m) => W::Protocol(m),
                    N::TooLarge(m) => W::TooLarge(m),
                }
            }

            impl wit_http::Host for HostState {
                async fn send(
                    &mut self,
                    req: wit_http::Request,
                ) -> wasmtime::Result<Result<wit_http::Response, wit_http::HttpError>> {
                    let timeout = self.outbound_timeout(req.timeout_ms);
                    let client = self.handles()?.clone();
                    let request = to_native_request(req, timeout, &self.request);
                    self.remember_credentials(&request);
                    Ok(client
                        .http
                        .send(request)
                        .await
                        .map(|r| wit_http::Response {
                            status: r.status,
                            headers: r.headers,
                            body: r.body,
                        })
                        .map_err(to_wit_http_error))
                }

                async fn send_streaming(
                    &mut self,
                    req: wit_http::Request,
                    framing: wit_http::Framing,
                ) -> wasmtime::Result<Result<wit_http::StreamingResponse, wit_http::HttpError>>
                {
                    let timeout = self.outbound_timeout(req.timeout_ms);
                    let framing = match framing {
                        wit_http::Framing::Raw => native_http::Framing::Raw,
                        wit_http::Framing::Sse => native_http::Framing::Sse,
                        wit_http::Framing::AwsEventStream => native_http::Framing::AwsEventStream,
                    };
                    let client = self.handles()?.clone();
                    let request = to_native_request(req, timeout, &self.request);
                    self.remember_credentials(&request);
                    match client.http.send_streaming(request, framing).await {
                        Ok(native_http::StreamingResponse {
                            status,
                            headers,
                            body,
                        }) => {
                            let body = self.table.push(BodyStreamHandle(body))?;
                            Ok(Ok(wit_http::StreamingResponse {
                                status,
                                headers,
                                body,
                            }))
                        }
                        Err(e) => Ok(Err(to_wit_http_error(e))),
                    }
                }
            }

            impl wit_http::HostBodyStream for HostState {
                async fn next(
                    &mut self,
                    stream: Resource<BodyStreamHandle>,
                ) -> wasmtime::Result<Result<Option<wit_http::Frame>, wit_http::HttpError>>
                {
                    let handle = self.table.get_mut(&stream)?;
                    Ok(handle
                        .0
                        .next()
                        .await
                        .map(|f| {
                            f.map(|f| wit_http::Frame {
                                event: f.event,
                                data: f.data,
                            })
                        })
                        .map_err(to_wit_http_error))
                }

                async fn drop(
                    &mut self,
                    stream: Resource<BodyStreamHandle>,
                ) -> wasmtime::Result<()> {
                    self.table.delete(stream)?;
                    Ok(())
                }
            }

            impl config::Host for HostState {
                async fn get_env(&mut self, name: String) -> wasmtime::Result<Option<String>> {
                    Ok(self.handles()?.env.get(&name))
                }
            }

            impl logging::Host for HostState {
                async fn log(
                    &mut self,
                    level: logging::Level,
                    message: String,
                ) -> wasmtime::Result<()> {
                    let level = match level {
                        logging::Level::Trace => native_log::LogLevel::Trace,
                        logging::Level::Debug => native_log::LogLevel::Debug,
                        logging::Level::Info => native_log::LogLevel::Info,
                        logging::Level::Warn => native_log::LogLevel::Warn,
                        logging::Level::Error => native_log::LogLevel::Error,
                    };
                    self.logger.log(level, &message);
                    Ok(())
                }
            }

            fn to_wit_kv_error(e: native_kv::KvError) -> kv::KvError {
                match e {
                    native_kv::KvError::TooLarge(m) => kv::KvError::TooLarge(m),
                    native_kv::KvError::Backend(m) => kv::KvError::Backend(m),
                }
            }

            impl kv::Host for HostState {
                async fn get(
                    &mut self,
                    key: String,
                ) -> wasmtime::Result<Result<Option<Vec<u8>>, kv::KvError>> {
                    Ok(self.handles()?.kv.get(&key).await.map_err(to_wit_kv_error))
                }

                async fn set(
                    &mut self,
                    key: String,
                    value: Vec<u8>,
                ) -> wasmtime::Result<Result<(), kv::KvError>> {
                    let kv = &self.handles()?.kv;
                    Ok(kv.set(&key, value).await.map_err(to_wit_kv_error))
                }

                async fn delete(
                    &mut self,
                    key: String,
                ) -> wasmtime::Result<Result<(), kv::KvError>> {
                    let kv = &self.handles()?.kv;
                    Ok(kv.delete(&key).await.map_err(to_wit_kv_error))
                }

                async fn list_keys(
                    &mut self,
                    prefix: String,
                ) -> wasmtime::Result<Result<Vec<String>, kv::KvError>> {
                    let kv = &self.handles()?.kv;
                    Ok(kv.list_keys(&prefix).await.map_err(to_wit_kv_error))
                }
            }

            impl types::Host for HostState {}
        }
    };
}

version_imports!(imports_v0_1, since_v0_1, auth_v0_1);
version_imports!(imports_v0_2, since_v0_2, auth_v0_2);

/// WASI stdout or stderr of one instance: complete lines go to the plugin's logger (the
/// logger's `PluginOutput` does the line buffering and the length cap).
pub struct LogSink {
    pub logger: Arc<native_log::PluginLogger>,
    pub stream: native_log::OutputStream,
}

impl wasmtime_wasi::cli::IsTerminal for LogSink {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl wasmtime_wasi::cli::StdoutStream for LogSink {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(LineWriter(self.logger.output(self.stream)))
    }
}

/// An `AsyncWrite` over a plugin's output: writes never block and never fail.
struct LineWriter(native_log::PluginOutput);

impl tokio::io::AsyncWrite for LineWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.0.write(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.0.flush();
        Poll::Ready(Ok(()))
    }
}
