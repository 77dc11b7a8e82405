//! Thin axum handlers: turn the HTTP request into typed inputs, call the `rest` interaction,
//! and render the result. No FHIR logic lives here.

use super::extract::{FhirRequest, Query, ReturnPreference};
use super::headers::header_text;
use super::negotiate::{is_json_patch, request_format, Format};
use super::response::{
    add_location, add_version_headers, body_response, empty_response, error_response,
    information_outcome, outcome_with,
};
use crate::app::AppState;
use crate::error::{ErrorKind, FhirError, FhirResult};
use crate::policy::Access;
use crate::rest::provenance::SuppliedProvenance;
use crate::rest::search::SearchInput;
use crate::rest::{
    capability_statement, create_criteria, ConditionalCreate, DeleteOutcome, HistoryParams, Level,
    OperationCall, OperationInput, PatchBody, UpdateOutcome, VersionedResource,
};
use crate::store::HistoryScope;
use axum::body::Body;
use axum::extract::{Extension, OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::Value;

/// Run `work` with the negotiated format; errors become OperationOutcomes.
async fn respond<F, Fut>(negotiated: FhirResult<Format>, work: F) -> Response
where
    F: FnOnce(Format) -> Fut,
    Fut: std::future::Future<Output = FhirResult<Response>>,
{
    let format = match negotiated {
        Ok(f) => f,
        Err(e) => return error_response(&e, Format::Json),
    };
    match work(format).await {
        Ok(response) => response,
        Err(e) => error_response(&e, format),
    }
}

/// [`respond`] for a write: the client's `X-Provenance` goes with it to the write pipeline,
/// and the warnings the pipeline notes come back (`Prefer: return=OperationOutcome`);
/// `Prefer: handling=strict` turns what would be a warning into a refusal where a hook says so.
async fn respond_write<F, Fut>(
    negotiated: FhirResult<Format>,
    supplied: FhirResult<Option<SuppliedProvenance>>,
    strict: bool,
    work: F,
) -> Response
where
    F: FnOnce(Format) -> Fut,
    Fut: std::future::Future<Output = FhirResult<Response>>,
{
    respond(negotiated, |format| async move {
        let writes = crate::rest::provenance::with_supplied(supplied?, work(format));
        crate::rest::warnings::collecting(strict, writes).await
    })
    .await
}

/// Read the body within the configured limit and parse it as a FHIR resource (JSON or XML).
async fn resource_body(state: &AppState, headers: &HeaderMap, body: Body) -> FhirResult<Value> {
    let bytes = read_body(state, body).await?;
    resource_from_bytes(state, headers, bytes)
}

/// Parse a request body already read as a FHIR resource in its `Content-Type` (JSON or XML),
/// within the JSON limits (XML: its elements nested at most `max_json_depth` deep).
fn resource_from_bytes(state: &AppState, headers: &HeaderMap, bytes: Bytes) -> FhirResult<Value> {
    let format = request_format(header_text(headers, "content-type"))?;
    let limits = crate::validate::JsonLimits::from_config(&state.config);
    let json = match format {
        Format::Json => bytes,
        Format::Xml => {
            Bytes::from(fhir_r4::xml_to_json(&bytes, limits.max_depth).map_err(|e| {
                FhirError::new(
                    ErrorKind::BadRequest,
                    "structure",
                    format!("the request body is not a valid FHIR XML resource: {e}"),
                )
            })?)
        }
    };
    crate::validate::parse_json(&json, limits)
}

/// Read a request body: 413 beyond `max_body_bytes`, 408 when it does not arrive in time
/// (`http/server.rs`), 400 when the connection fails on the way.
async fn read_body(state: &AppState, body: Body) -> FhirResult<Bytes> {
    let limit = state.config.max_body_bytes;
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let error: axum::BoxError = e.into_inner();
        if caused_by::<http_body_util::LengthLimitError>(error.as_ref()) {
            FhirError::new(
                ErrorKind::PayloadTooLarge,
                "too-long",
                format!("the request body is larger than the limit of {limit} bytes"),
            )
        } else if caused_by::<super::server::BodyTimedOut>(error.as_ref()) {
            FhirError::new(
                ErrorKind::RequestTimeout,
                "timeout",
                format!(
                    "the request body did not arrive within {} s",
                    state.config.body_read_timeout_seconds
                ),
            )
        } else {
            FhirError::new(
                ErrorKind::BadRequest,
                "incomplete",
                "the request body could not be read",
            )
        }
    })
}

/// Whether `error` or an error it wraps (its source chain) is `E`.
fn caused_by<E: std::error::Error + 'static>(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if e.is::<E>() {
            return true;
        }
        next = e.source();
    }
    false
}

fn resource_response(status: StatusCode, format: Format, resource: VersionedResource) -> Response {
    let mut response = body_response(status, format, resource.body.clone());
    add_version_headers(&mut response, &resource);
    response
}

/// The response to a successful create/update/patch, honouring `Prefer: return`.
fn write_response(
    state: &AppState,
    prefer: ReturnPreference,
    format: Format,
    status: StatusCode,
    resource: VersionedResource,
) -> Response {
    let mut response = match prefer {
        ReturnPreference::Representation => body_response(status, format, resource.body.clone()),
        ReturnPreference::Minimal => empty_response(status),
        ReturnPreference::OperationOutcome => outcome_with(
            status,
            format,
            format!(
                "{}/{} is now at version {}",
                resource.resource_type, resource.id, resource.version_id
            ),
            crate::rest::warnings::noted(),
        ),
    };
    add_version_headers(&mut response, &resource);
    add_location(&mut response, &state.config.base_url, &resource);
    response
}

/// The response to an update (plain or conditional): 201 when it created the resource.
fn update_response(
    state: &AppState,
    prefer: ReturnPreference,
    format: Format,
    outcome: UpdateOutcome,
) -> Response {
    let status = if outcome.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    write_response(state, prefer, format, status, outcome.resource)
}

pub async fn metadata(State(state): State<AppState>, req: FhirRequest) -> Response {
    respond(req.format, |format| async move {
        let mut statement = capability_statement(
            &state.config.base_url,
            crate::validate::resource_types(),
            &state.config.require_if_match,
            state.config.require_if_match_for_all,
        );
        if let Some(auth) = &state.auth {
            statement["rest"][0]["security"] =
                crate::auth::discovery::capability_security(&auth.settings);
        }
        let body = serde_json::to_vec(&statement).map_err(FhirError::internal)?;
        Ok(body_response(StatusCode::OK, format, Bytes::from(body)))
    })
    .await
}

pub async fn read(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path((resource_type, id)): Path<(String, String)>,
    req: FhirRequest,
) -> Response {
    if id.starts_with('$') {
        let at = (Level::Type, Some(resource_type), None, id);
        return run_operation(state, access, at, req, None).await;
    }
    let if_none_match = req.if_none_match;
    respond(req.format, |format| async move {
        let resource = state.fhir.read(&access, &resource_type, &id).await?;
        if if_none_match == Some(resource.version_id) {
            let mut response = empty_response(StatusCode::NOT_MODIFIED);
            add_version_headers(&mut response, &resource);
            return Ok(response);
        }
        Ok(resource_response(StatusCode::OK, format, resource))
    })
    .await
}

pub async fn vread(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path((resource_type, id, version)): Path<(String, String, String)>,
    req: FhirRequest,
) -> Response {
    respond(req.format, |format| async move {
        let resource = state
            .fhir
            .vread(&access, &resource_type, &id, &version)
            .await?;
        Ok(resource_response(StatusCode::OK, format, resource))
    })
    .await
}

pub async fn create(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path(resource_type): Path<String>,
    req: FhirRequest,
    body: Body,
) -> Response {
    if resource_type.starts_with('$') {
        let at = (Level::System, None, None, resource_type);
        return run_operation(state, access, at, req, Some(body)).await;
    }
    respond_write(
        req.format.clone(),
        req.supplied_provenance(),
        req.strict,
        |format| async move {
            crate::rest::check_known_type(&resource_type)?;
            let condition = create_criteria(req.header("if-none-exist"), req.query.iter())?;
            let value = resource_body(&state, &req.headers, body).await?;
            let (status, resource) = match condition {
                Some(condition) => match state
                    .fhir
                    .create_if_none_exist(&access, &resource_type, value, &condition)
                    .await?
                {
                    ConditionalCreate::Created(created) => (StatusCode::CREATED, created),
                    ConditionalCreate::Existing(existing) => (StatusCode::OK, existing),
                },
                None => (
                    StatusCode::CREATED,
                    state.fhir.create(&access, &resource_type, value).await?,
                ),
            };
            Ok(write_response(&state, req.prefer, format, status, resource))
        },
    )
    .await
}

/// `POST /` with a batch or transaction Bundle.
pub async fn bundle(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    req: FhirRequest,
    body: Body,
) -> Response {
    respond_write(
        req.format.clone(),
        req.supplied_provenance(),
        req.strict,
        |format| async move {
            let value = resource_body(&state, &req.headers, body).await?;
            let response = state.fhir.process_bundle(&access, value).await?;
            Ok(body_response(StatusCode::OK, format, response))
        },
    )
    .await
}

/// `PUT /{type}?criteria`: conditional update.
pub async fn conditional_update(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path(resource_type): Path<String>,
    req: FhirRequest,
    body: Body,
) -> Response {
    respond_write(
        req.format.clone(),
        req.supplied_provenance(),
        req.strict,
        |format| async move {
            crate::rest::check_known_type(&resource_type)?;
            let if_match = req.if_match.clone()?;
            let value = resource_body(&state, &req.headers, body).await?;
            let outcome = state
                .fhir
                .update_where(&access, &resource_type, &req.query.raw, value, if_match)
                .await?;
            Ok(update_response(&state, req.prefer, format, outcome))
        },
    )
    .await
}

/// `DELETE /{type}?criteria`: conditional delete (every match).
pub async fn conditional_delete(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path(resource_type): Path<String>,
    req: FhirRequest,
) -> Response {
    respond_write(
        req.format.clone(),
        req.supplied_provenance(),
        req.strict,
        |format| async move {
            let if_match = req.if_match.clone()?;
            let deleted = state
                .fhir
                .delete_where(&access, &resource_type, &req.query.raw, if_match)
                .await?;
            Ok(match req.prefer {
                ReturnPreference::OperationOutcome => information_outcome(
                    StatusCode::OK,
                    format,
                    format!("{deleted} {resource_type} resource(s) deleted"),
                ),
                _ => empty_response(StatusCode::NO_CONTENT),
            })
        },
    )
    .await
}

pub async fn update(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path((resource_type, id)): Path<(String, String)>,
    req: FhirRequest,
    body: Body,
) -> Response {
    respond_write(
        req.format.clone(),
        req.supplied_provenance(),
        req.strict,
        |format| async move {
            crate::rest::check_known_type(&resource_type)?;
            let if_match = req.if_match.clone()?;
            let value = resource_body(&state, &req.headers, body).await?;
            let outcome = state
                .fhir
                .update(&access, &resource_type, &id, value, if_match)
                .await?;
            Ok(update_response(&state, req.prefer, format, outcome))
        },
    )
    .await
}

pub async fn patch(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path((resource_type, id)): Path<(String, String)>,
    req: FhirRequest,
    body: Body,
) -> Response {
    respond_write(
        req.format.clone(),
        req.supplied_provenance(),
        req.strict,
        |format| async move {
            crate::rest::check_known_type(&resource_type)?;
            // JSON Patch by its media type; a FHIR resource (FHIRPath Patch's Parameters) in
            // JSON or XML; anything else is not a patch this server reads.
            let content_type = req.header("content-type");
            let json_patch = is_json_patch(content_type);
            if !json_patch && request_format(content_type).is_err() {
                return Err(FhirError::new(
                    ErrorKind::UnsupportedMediaType,
                    "not-supported",
                    "PATCH takes a JSON Patch (Content-Type: application/json-patch+json) or a \
                 FHIRPath Patch (a Parameters resource, Content-Type: application/fhir+json)",
                ));
            }
            let if_match = req.if_match.clone()?;
            let bytes = read_body(&state, body).await?;
            let patch = if json_patch {
                PatchBody::JsonPatch(crate::validate::parse_json(
                    &bytes,
                    crate::validate::JsonLimits::from_config(&state.config),
                )?)
            } else {
                PatchBody::Resource(resource_from_bytes(&state, &req.headers, bytes)?)
            };
            let patched = state
                .fhir
                .patch(&access, &resource_type, &id, patch, if_match)
                .await?;
            Ok(write_response(
                &state,
                req.prefer,
                format,
                StatusCode::OK,
                patched,
            ))
        },
    )
    .await
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path((resource_type, id)): Path<(String, String)>,
    req: FhirRequest,
) -> Response {
    respond_write(
        req.format.clone(),
        req.supplied_provenance(),
        req.strict,
        |format| async move {
            let if_match = req.if_match.clone()?;
            let outcome = state
                .fhir
                .delete(&access, &resource_type, &id, if_match)
                .await?;
            let (diagnostics, version) = match outcome {
                DeleteOutcome::Deleted { version_id } => (
                    format!("{resource_type}/{id} deleted (version {version_id})"),
                    Some(version_id),
                ),
                DeleteOutcome::NothingToDelete => (
                    format!(
                        "{resource_type}/{id} does not exist or was already deleted; nothing to do"
                    ),
                    None,
                ),
            };
            let mut response = match req.prefer {
                ReturnPreference::OperationOutcome => {
                    information_outcome(StatusCode::OK, format, diagnostics)
                }
                _ => empty_response(StatusCode::NO_CONTENT),
            };
            if let Some(v) = version {
                response
                    .headers_mut()
                    .insert(axum::http::header::ETAG, super::response::etag(v));
            }
            Ok(response)
        },
    )
    .await
}

async fn history(
    state: AppState,
    access: Access,
    scope: HistoryScope,
    req: FhirRequest,
) -> Response {
    let params = HistoryParams::from_pairs(req.query.iter());
    respond(req.format, |format| async move {
        let page = state.fhir.history(&access, scope, &params).await?;
        Ok(body_response(StatusCode::OK, format, page.body))
    })
    .await
}

pub async fn history_system(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    req: FhirRequest,
) -> Response {
    history(state, access, HistoryScope::System, req).await
}

pub async fn history_type(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path(resource_type): Path<String>,
    req: FhirRequest,
) -> Response {
    history(state, access, HistoryScope::Type(resource_type), req).await
}

pub async fn history_instance(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path((resource_type, id)): Path<(String, String)>,
    req: FhirRequest,
) -> Response {
    history(
        state,
        access,
        HistoryScope::Instance(resource_type, id),
        req,
    )
    .await
}

async fn run_search(
    state: AppState,
    access: Access,
    req: FhirRequest,
    resource_type: String,
    patient: Option<String>,
) -> Response {
    respond(req.format, |format| async move {
        let input = SearchInput {
            resource_type,
            pairs: req.query.pairs,
            strict: req.strict,
            patient_compartment: patient,
        };
        let bundle = state.fhir.search(&access, &input).await?;
        Ok(body_response(StatusCode::OK, format, bundle))
    })
    .await
}

/// `GET /{type}?…`
pub async fn search(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path(resource_type): Path<String>,
    req: FhirRequest,
) -> Response {
    if resource_type.starts_with('$') {
        let at = (Level::System, None, None, resource_type);
        return run_operation(state, access, at, req, None).await;
    }
    run_search(state, access, req, resource_type, None).await
}

/// `POST /{type}/_search` with a form body: the same as GET with the parameters combined.
pub async fn search_post(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path(resource_type): Path<String>,
    mut req: FhirRequest,
    body: Body,
) -> Response {
    let form = req
        .header("content-type")
        .and_then(|c| c.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form {
        let err = FhirError::new(
            ErrorKind::UnsupportedMediaType,
            "not-supported",
            "POST _search takes an application/x-www-form-urlencoded body",
        );
        return error_response(&err, req.format.unwrap_or(Format::Json));
    }
    match read_body(&state, body).await {
        Ok(bytes) => {
            let form = Query::parse(Some(&String::from_utf8_lossy(&bytes)));
            req.query.pairs.extend(form.pairs);
        }
        Err(e) => return error_response(&e, Format::Json),
    }
    run_search(state, access, req, resource_type, None).await
}

/// An operation request (`$op` at the system, type or instance level): its URL parameters
/// and, for POST, a `Parameters` body or the one resource the operation takes (an empty body
/// is no parameters), run through the one operation dispatch (`rest::operations`).
async fn run_operation(
    state: AppState,
    access: Access,
    at: (Level, Option<String>, Option<String>, String),
    req: FhirRequest,
    body: Option<Body>,
) -> Response {
    let (level, resource_type, id, code) = at;
    respond(req.format.clone(), |format| async move {
        let mut input = OperationInput::from_pairs(req.query.iter());
        let post = body.is_some();
        if let Some(body) = body {
            let bytes = read_body(&state, body).await?;
            if !bytes.iter().all(u8::is_ascii_whitespace) {
                let value = resource_from_bytes(&state, &req.headers, bytes)?;
                let resource_type = value
                    .get("resourceType")
                    .and_then(|t| t.as_str())
                    .unwrap_or("Parameters")
                    .to_string();
                let checked = crate::validate::check_resource(value, &resource_type)?;
                input.add_body(checked.value())?;
            }
        }
        let call = OperationCall {
            code: &code,
            level,
            resource_type: resource_type.as_deref(),
            id: id.as_deref(),
            post,
            input,
        };
        let answer = state.fhir.operation(&access, &call).await?;
        Ok(body_response(StatusCode::OK, format, answer))
    })
    .await
}

/// `POST /{type}/{id}`: only an operation on the type (`/{type}/$op`) lives there.
pub async fn type_operation_post(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path((resource_type, code)): Path<(String, String)>,
    req: FhirRequest,
    body: Body,
) -> Response {
    if !code.starts_with('$') {
        return method_not_allowed_here("POST", &format!("/{resource_type}/{code}"));
    }
    let at = (Level::Type, Some(resource_type), None, code);
    run_operation(state, access, at, req, Some(body)).await
}

/// `POST /{type}/{id}/{x}`: only an operation on the instance (`/{type}/{id}/$op`) lives there.
pub async fn instance_operation_post(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path((resource_type, id, code)): Path<(String, String, String)>,
    req: FhirRequest,
    body: Body,
) -> Response {
    if !code.starts_with('$') {
        return method_not_allowed_here("POST", &format!("/{resource_type}/{id}/{code}"));
    }
    let at = (Level::Instance, Some(resource_type), Some(id), code);
    run_operation(state, access, at, req, Some(body)).await
}

fn method_not_allowed_here(method: &str, path: &str) -> Response {
    error_response(
        &FhirError::new(
            ErrorKind::MethodNotAllowed,
            "not-supported",
            format!("{method} is not allowed on {path}"),
        ),
        Format::Json,
    )
}

/// `GET /Patient/{id}/{type}?…`: search within a patient's compartment.
pub async fn compartment_search(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path((compartment, id, resource_type)): Path<(String, String, String)>,
    req: FhirRequest,
) -> Response {
    if resource_type.starts_with('$') {
        let at = (Level::Instance, Some(compartment), Some(id), resource_type);
        return run_operation(state, access, at, req, None).await;
    }
    if compartment != "Patient" {
        let err = FhirError::not_found(format!(
            "no {compartment} compartment: only Patient compartments are searchable"
        ));
        return error_response(&err, req.format.unwrap_or(Format::Json));
    }
    if !crate::validate::is_valid_id(&id) {
        let err = FhirError::not_found("Patient ids are 1-64 letters, digits, '-' and '.'");
        return error_response(&err, req.format.unwrap_or(Format::Json));
    }
    run_search(state, access, req, resource_type, Some(id)).await
}

pub async fn not_found(OriginalUri(uri): OriginalUri) -> Response {
    error_response(
        &FhirError::not_found(format!("no FHIR endpoint at {}", uri.path())),
        Format::Json,
    )
}

pub async fn method_not_allowed(
    method: axum::http::Method,
    OriginalUri(uri): OriginalUri,
) -> Response {
    method_not_allowed_here(method.as_str(), uri.path())
}

pub async fn healthz() -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        "{\"status\":\"ok\"}",
    )
        .into_response()
}

pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.fhir.ping().await {
        Ok(()) => (
            StatusCode::OK,
            [("content-type", "application/json")],
            format!(
                "{{\"status\":\"ready\",\"database\":\"{}\"}}",
                state.fhir.backend_name()
            ),
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [("content-type", "application/json")],
                "{\"status\":\"unavailable\",\"database\":\"unreachable\"}",
            )
                .into_response()
        }
    }
}
