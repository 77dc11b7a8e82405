//! Thin axum handlers: turn the HTTP request into typed inputs, call the `rest` interaction,
//! and render the result. No FHIR logic lives here.

use super::headers::{
    handling_strict, header_text, if_match, if_none_match, return_preference, ReturnPreference,
};
use super::negotiate::{is_json_patch, request_format, response_format, Format};
use super::response::{
    add_location, add_version_headers, body_response, empty_response, error_response,
    information_outcome,
};
use crate::app::AppState;
use crate::error::{ErrorKind, FhirError, FhirResult};
use crate::policy::Access;
use crate::rest::search::SearchInput;
use crate::rest::{
    capability_statement, create_criteria, ConditionalCreate, DeleteOutcome, HistoryParams, Level,
    OperationCall, OperationInput, UpdateOutcome, VersionedResource,
};
use crate::store::HistoryScope;
use axum::body::Body;
use axum::extract::{Extension, OriginalUri, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::Value;

/// The decoded query string.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(raw: Option<String>) -> Self {
        Query(
            form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// The response format the request asks for (`_format`, then `Accept`).
fn negotiate(query: &Query, headers: &HeaderMap) -> FhirResult<Format> {
    response_format(query.get("_format"), header_text(headers, "accept"))
}

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

/// Read the body within the configured limit and parse it as a FHIR resource (JSON or XML).
async fn resource_body(state: &AppState, headers: &HeaderMap, body: Body) -> FhirResult<Value> {
    let bytes = read_body(state, body).await?;
    resource_from_bytes(headers, bytes)
}

/// Parse a request body already read as a FHIR resource in its `Content-Type` (JSON or XML).
fn resource_from_bytes(headers: &HeaderMap, bytes: Bytes) -> FhirResult<Value> {
    let format = request_format(header_text(headers, "content-type"))?;
    let json = match format {
        Format::Json => bytes,
        Format::Xml => Bytes::from(fhir_r4::xml_to_json(&bytes).map_err(|e| {
            FhirError::new(
                ErrorKind::BadRequest,
                "structure",
                format!("the request body is not a valid FHIR XML resource: {e}"),
            )
        })?),
    };
    crate::validate::parse_json(&json)
}

async fn read_body(state: &AppState, body: Body) -> FhirResult<Bytes> {
    let limit = state.config.max_body_bytes;
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        FhirError::new(
            ErrorKind::PayloadTooLarge,
            "too-long",
            format!(
                "the request body is larger than the limit of {limit} bytes (or could not be read)"
            ),
        )
    })
}

fn resource_response(status: StatusCode, format: Format, resource: VersionedResource) -> Response {
    let mut response = body_response(status, format, resource.body.clone());
    add_version_headers(&mut response, &resource);
    response
}

/// The response to a successful create/update/patch, honouring `Prefer: return`.
fn write_response(
    state: &AppState,
    headers: &HeaderMap,
    format: Format,
    status: StatusCode,
    resource: VersionedResource,
) -> Response {
    let mut response = match return_preference(headers) {
        ReturnPreference::Representation => body_response(status, format, resource.body.clone()),
        ReturnPreference::Minimal => empty_response(status),
        ReturnPreference::OperationOutcome => information_outcome(
            status,
            format,
            format!(
                "{}/{} is now at version {}",
                resource.resource_type, resource.id, resource.version_id
            ),
        ),
    };
    add_version_headers(&mut response, &resource);
    add_location(&mut response, &state.config.base_url, &resource);
    response
}

/// The response to an update (plain or conditional): 201 when it created the resource.
fn update_response(
    state: &AppState,
    headers: &HeaderMap,
    format: Format,
    outcome: UpdateOutcome,
) -> Response {
    let status = if outcome.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    write_response(state, headers, format, status, outcome.resource)
}

pub async fn metadata(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let query = Query::parse(raw);
    respond(negotiate(&query, &headers), |format| async move {
        let mut statement =
            capability_statement(&state.config.base_url, crate::validate::resource_types());
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
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let query = Query::parse(raw);
    if id.starts_with('$') {
        let at = (Level::Type, Some(resource_type), None, id);
        return run_operation(state, access, at, query, headers, None).await;
    }
    respond(negotiate(&query, &headers), |format| async move {
        let resource = state.fhir.read(&access, &resource_type, &id).await?;
        if if_none_match(&headers) == Some(resource.version_id) {
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
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let query = Query::parse(raw);
    respond(negotiate(&query, &headers), |format| async move {
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
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let query = Query::parse(raw);
    if resource_type.starts_with('$') {
        let at = (Level::System, None, None, resource_type);
        return run_operation(state, access, at, query, headers, Some(body)).await;
    }
    respond(negotiate(&query, &headers), |format| async move {
        crate::rest::check_known_type(&resource_type)?;
        let condition = create_criteria(header_text(&headers, "if-none-exist"), query.pairs())?;
        let value = resource_body(&state, &headers, body).await?;
        if let Some(condition) = condition {
            return Ok(
                match state
                    .fhir
                    .create_if_none_exist(&access, &resource_type, value, &condition)
                    .await?
                {
                    ConditionalCreate::Created(created) => {
                        write_response(&state, &headers, format, StatusCode::CREATED, created)
                    }
                    ConditionalCreate::Existing(existing) => {
                        write_response(&state, &headers, format, StatusCode::OK, existing)
                    }
                },
            );
        }
        let created = state.fhir.create(&access, &resource_type, value).await?;
        Ok(write_response(
            &state,
            &headers,
            format,
            StatusCode::CREATED,
            created,
        ))
    })
    .await
}

/// `POST /` with a batch or transaction Bundle.
pub async fn bundle(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let query = Query::parse(raw);
    respond(negotiate(&query, &headers), |format| async move {
        let value = resource_body(&state, &headers, body).await?;
        let response = state.fhir.process_bundle(&access, value).await?;
        Ok(body_response(StatusCode::OK, format, response))
    })
    .await
}

/// `PUT /{type}?criteria`: conditional update.
pub async fn conditional_update(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path(resource_type): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let criteria = raw.clone().unwrap_or_default();
    let query = Query::parse(raw);
    respond(negotiate(&query, &headers), |format| async move {
        crate::rest::check_known_type(&resource_type)?;
        let if_match = if_match(&headers)?;
        let value = resource_body(&state, &headers, body).await?;
        let outcome = state
            .fhir
            .update_where(&access, &resource_type, &criteria, value, if_match)
            .await?;
        Ok(update_response(&state, &headers, format, outcome))
    })
    .await
}

/// `DELETE /{type}?criteria`: conditional delete (every match).
pub async fn conditional_delete(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path(resource_type): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let criteria = raw.clone().unwrap_or_default();
    let query = Query::parse(raw);
    respond(negotiate(&query, &headers), |format| async move {
        let if_match = if_match(&headers)?;
        let deleted = state
            .fhir
            .delete_where(&access, &resource_type, &criteria, if_match)
            .await?;
        Ok(match return_preference(&headers) {
            ReturnPreference::OperationOutcome => information_outcome(
                StatusCode::OK,
                format,
                format!("{deleted} {resource_type} resource(s) deleted"),
            ),
            _ => empty_response(StatusCode::NO_CONTENT),
        })
    })
    .await
}

pub async fn update(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path((resource_type, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let query = Query::parse(raw);
    respond(negotiate(&query, &headers), |format| async move {
        crate::rest::check_known_type(&resource_type)?;
        let if_match = if_match(&headers)?;
        let value = resource_body(&state, &headers, body).await?;
        let outcome = state
            .fhir
            .update(&access, &resource_type, &id, value, if_match)
            .await?;
        Ok(update_response(&state, &headers, format, outcome))
    })
    .await
}

pub async fn patch(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path((resource_type, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let query = Query::parse(raw);
    respond(negotiate(&query, &headers), |format| async move {
        crate::rest::check_known_type(&resource_type)?;
        if !is_json_patch(header_text(&headers, "content-type")) {
            return Err(FhirError::new(
                ErrorKind::UnsupportedMediaType,
                "not-supported",
                "PATCH takes a JSON Patch document (Content-Type: application/json-patch+json)",
            ));
        }
        let if_match = if_match(&headers)?;
        let bytes = read_body(&state, body).await?;
        let patch = crate::validate::parse_json(&bytes)?;
        let patched = state
            .fhir
            .patch(&access, &resource_type, &id, patch, if_match)
            .await?;
        Ok(write_response(
            &state,
            &headers,
            format,
            StatusCode::OK,
            patched,
        ))
    })
    .await
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path((resource_type, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let query = Query::parse(raw);
    respond(negotiate(&query, &headers), |format| async move {
        let if_match = if_match(&headers)?;
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
        let mut response = match return_preference(&headers) {
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
    })
    .await
}

async fn history(
    state: AppState,
    access: Access,
    scope: HistoryScope,
    raw: Option<String>,
    headers: HeaderMap,
) -> Response {
    let query = Query::parse(raw);
    let params = HistoryParams::from_pairs(query.pairs());
    respond(negotiate(&query, &headers), |format| async move {
        let page = state.fhir.history(&access, scope, &params).await?;
        Ok(body_response(StatusCode::OK, format, page.body))
    })
    .await
}

pub async fn history_system(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    history(state, access, HistoryScope::System, raw, headers).await
}

pub async fn history_type(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path(resource_type): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    history(
        state,
        access,
        HistoryScope::Type(resource_type),
        raw,
        headers,
    )
    .await
}

pub async fn history_instance(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path((resource_type, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    history(
        state,
        access,
        HistoryScope::Instance(resource_type, id),
        raw,
        headers,
    )
    .await
}

async fn run_search(
    state: AppState,
    access: Access,
    query: Query,
    headers: HeaderMap,
    resource_type: String,
    patient: Option<String>,
) -> Response {
    let strict = handling_strict(&headers);
    respond(negotiate(&query, &headers), |format| async move {
        let input = SearchInput {
            resource_type,
            pairs: query.0,
            strict,
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
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let query = Query::parse(raw);
    if resource_type.starts_with('$') {
        let at = (Level::System, None, None, resource_type);
        return run_operation(state, access, at, query, headers, None).await;
    }
    run_search(state, access, query, headers, resource_type, None).await
}

/// `POST /{type}/_search` with a form body: the same as GET with the parameters combined.
pub async fn search_post(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path(resource_type): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut query = Query::parse(raw);
    let form = header_text(&headers, "content-type")
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
        return error_response(&err, negotiate(&query, &headers).unwrap_or(Format::Json));
    }
    match read_body(&state, body).await {
        Ok(bytes) => query
            .0
            .extend(Query::parse(Some(String::from_utf8_lossy(&bytes).into_owned())).0),
        Err(e) => return error_response(&e, Format::Json),
    }
    run_search(state, access, query, headers, resource_type, None).await
}

/// An operation request (`$op` at the system, type or instance level): its URL parameters
/// and, for POST, a `Parameters` body (an empty body is no parameters), run through the one
/// operation dispatch (`rest::operations`).
async fn run_operation(
    state: AppState,
    access: Access,
    at: (Level, Option<String>, Option<String>, String),
    query: Query,
    headers: HeaderMap,
    body: Option<Body>,
) -> Response {
    let (level, resource_type, id, code) = at;
    respond(negotiate(&query, &headers), |format| async move {
        let mut input = OperationInput::from_pairs(query.pairs());
        let post = body.is_some();
        if let Some(body) = body {
            let bytes = read_body(&state, body).await?;
            if !bytes.iter().all(u8::is_ascii_whitespace) {
                let value = resource_from_bytes(&headers, bytes)?;
                let checked = crate::validate::check_resource(value, "Parameters")?;
                input.add_parameters(checked.value())?;
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
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let query = Query::parse(raw);
    if !code.starts_with('$') {
        return method_not_allowed_here("POST", &format!("/{resource_type}/{code}"));
    }
    let at = (Level::Type, Some(resource_type), None, code);
    run_operation(state, access, at, query, headers, Some(body)).await
}

/// `POST /{type}/{id}/{x}`: only an operation on the instance (`/{type}/{id}/$op`) lives there.
pub async fn instance_operation_post(
    State(state): State<AppState>,
    Extension(access): Extension<Access>,
    Path((resource_type, id, code)): Path<(String, String, String)>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let query = Query::parse(raw);
    if !code.starts_with('$') {
        return method_not_allowed_here("POST", &format!("/{resource_type}/{id}/{code}"));
    }
    let at = (Level::Instance, Some(resource_type), Some(id), code);
    run_operation(state, access, at, query, headers, Some(body)).await
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
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let query = Query::parse(raw);
    if resource_type.starts_with('$') {
        let at = (Level::Instance, Some(compartment), Some(id), resource_type);
        return run_operation(state, access, at, query, headers, None).await;
    }
    if compartment != "Patient" {
        let err = FhirError::not_found(format!(
            "no {compartment} compartment: only Patient compartments are searchable"
        ));
        return error_response(&err, negotiate(&query, &headers).unwrap_or(Format::Json));
    }
    run_search(state, access, query, headers, resource_type, Some(id)).await
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
    match state.fhir.store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            [("content-type", "application/json")],
            format!(
                "{{\"status\":\"ready\",\"database\":\"{}\"}}",
                state.fhir.store.backend_name()
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
