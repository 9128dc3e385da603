//! The slice of Microsoft Graph v1.0 that binding workload identity uses: applications looked
//! up by client id, and their federated identity credentials (list, create, get, update,
//! delete), over HTTPS with Graph's shapes and errors.
//!
//! Authorization is Graph's for application permissions: the bearer must be an access token
//! this tenant's Entra emulator issued for `https://graph.microsoft.com`; reading needs one of
//! `Application.Read.All`, `Application.ReadWrite.All`, or `Application.ReadWrite.OwnedBy` on
//! an owned application; writing needs `Application.ReadWrite.All`, or `…OwnedBy` on an
//! application listing the caller among its `owners`. Anything else is 403
//! `Authorization_RequestDenied`.
//!
//! Writes change the tenant's applications in place, so the Entra token endpoint judges the
//! next assertion against them and a scenario's `state` step reads them.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use jsonwebtoken::DecodingKey;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::super::request_log::{RequestLog, RequestLogEntry};
use super::access_token::{AccessTokenClaims, verify};
use super::directory::Directory;
use super::graph_error::GraphError;
use super::setup::{
    APPLICATION_READ_ALL, APPLICATION_READ_WRITE_ALL, APPLICATION_READ_WRITE_OWNED_BY,
    ApplicationSetup, AzureSetup, FederatedCredentialSetup, MAX_FEDERATED_CREDENTIALS_PER_APP,
};

/// The resource (token audience) of Microsoft Graph.
pub const GRAPH_RESOURCE: &str = "https://graph.microsoft.com";
/// Graph's well-known application id, the audience some tokens carry instead.
const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";
const METADATA: &str = "https://graph.microsoft.com/v1.0/$metadata";

pub struct GraphState {
    pub directory: Directory,
    /// The Entra emulator's token signing key (public half).
    pub token_key: DecodingKey,
    pub log: RequestLog,
}

pub fn router(state: Arc<GraphState>) -> Router {
    Router::new()
        .route("/v1.0/{*path}", any(handle))
        .with_state(state)
}

/// The object id of an application (different from its client id, as in Entra).
pub fn application_object_id(client_id: &str) -> String {
    guid_from(&format!("application:{}", client_id.to_ascii_lowercase()))
}

/// The id of a federated identity credential: stable for an application and a name (names
/// are immutable in Graph).
pub fn credential_id(client_id: &str, name: &str) -> String {
    guid_from(&format!(
        "federated-identity-credential:{}:{name}",
        client_id.to_ascii_lowercase()
    ))
}

fn guid_from(seed: &str) -> String {
    let digest = Sha256::digest(seed.as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

async fn handle(
    State(state): State<Arc<GraphState>>,
    method: Method,
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = serve(&state, &method, &path, query.as_deref(), &headers, &body);
    let (response, outcome) = match result {
        Ok((status, Some(body))) => (
            (status, axum::Json(body)).into_response(),
            status.as_u16().to_string(),
        ),
        Ok((status, None)) => (status.into_response(), status.as_u16().to_string()),
        Err(error) => {
            let outcome = format!("{} {}", error.status.as_u16(), error.code);
            (error.into_response(), outcome)
        }
    };
    state.log.record(RequestLogEntry::answered(
        method.as_str(),
        &format!("/v1.0/{path}"),
        format!("graph:{method} /v1.0/{path}"),
        outcome,
    ));
    response
}

type Answer = Result<(StatusCode, Option<Value>), GraphError>;

/// What the caller may do, from its token's `roles`.
struct Caller {
    client_id: String,
    roles: Vec<String>,
}

impl Caller {
    fn owns(&self, app: &ApplicationSetup) -> bool {
        app.owners
            .iter()
            .any(|o| o.eq_ignore_ascii_case(&self.client_id))
    }

    fn has(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    fn may_read(&self, app: &ApplicationSetup) -> bool {
        self.has(APPLICATION_READ_ALL)
            || self.has(APPLICATION_READ_WRITE_ALL)
            || (self.has(APPLICATION_READ_WRITE_OWNED_BY) && self.owns(app))
    }

    fn may_write(&self, app: &ApplicationSetup) -> bool {
        self.has(APPLICATION_READ_WRITE_ALL)
            || (self.has(APPLICATION_READ_WRITE_OWNED_BY) && self.owns(app))
    }

    fn may_read_any(&self) -> bool {
        self.has(APPLICATION_READ_ALL)
            || self.has(APPLICATION_READ_WRITE_ALL)
            || self.has(APPLICATION_READ_WRITE_OWNED_BY)
    }
}

fn authenticate(
    state: &GraphState,
    headers: &HeaderMap,
    tenant_id: &str,
) -> Result<Caller, GraphError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(GraphError::token_missing)?;
    let claims: AccessTokenClaims = verify(
        &state.token_key,
        token,
        tenant_id,
        &[GRAPH_RESOURCE.to_owned(), GRAPH_APP_ID.to_owned()],
    )
    .map_err(|rejection| GraphError::token_invalid(rejection.0))?;
    Ok(Caller {
        client_id: claims.appid,
        roles: claims.roles,
    })
}

fn serve(
    state: &GraphState,
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Answer {
    let tenant_id = state.directory.snapshot().tenant_id;
    let caller = authenticate(state, headers, &tenant_id)?;
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let Some(first) = segments.first().copied() else {
        return Err(GraphError::unknown_segment(""));
    };
    if first == "applications" && segments.len() == 1 {
        if method != Method::GET {
            return Err(GraphError::method_not_allowed());
        }
        return list_applications(state, &caller, query);
    }
    // `applications/{object id}` or `applications(appId='{client id}')`.
    let (key, rest) = match first.strip_prefix("applications") {
        Some("") => match segments.get(1) {
            Some(id) => (AppKey::ObjectId((*id).to_owned()), &segments[2..]),
            None => return Err(GraphError::unknown_segment(first)),
        },
        Some(alternate) => match alternate
            .strip_prefix("(appId='")
            .and_then(|s| s.strip_suffix("')"))
        {
            Some(client_id) => (AppKey::ClientId(client_id.to_owned()), &segments[1..]),
            None => return Err(GraphError::unknown_segment(first)),
        },
        None => return Err(GraphError::unknown_segment(first)),
    };
    match rest {
        [] if method == Method::GET => {
            state.directory.update(|setup| {
                let app = find_app(setup, &key)?;
                if !caller.may_read(app) {
                    return Err(GraphError::denied());
                }
                let mut object = application_json(app);
                object.insert(
                    "@odata.context".into(),
                    json!(format!("{METADATA}#applications/$entity")),
                );
                Ok((StatusCode::OK, Some(Value::Object(object))))
            })
        }
        [] => Err(GraphError::method_not_allowed()),
        ["federatedIdentityCredentials"] => match *method {
            Method::GET => state.directory.update(|setup| {
                let app = find_app(setup, &key)?;
                if !caller.may_read(app) {
                    return Err(GraphError::denied());
                }
                let object_id = application_object_id(&app.client_id);
                let value: Vec<Value> = app
                    .federated_credentials
                    .iter()
                    .map(|c| credential_json(&app.client_id, c))
                    .collect();
                Ok((
                    StatusCode::OK,
                    Some(json!({
                        "@odata.context": format!("{METADATA}#applications('{object_id}')/federatedIdentityCredentials"),
                        "value": value,
                    })),
                ))
            }),
            Method::POST => {
                let fields = json_object(body)?;
                state
                    .directory
                    .update(|setup| create_credential(setup, &key, &caller, &fields))
            }
            _ => Err(GraphError::method_not_allowed()),
        },
        ["federatedIdentityCredentials", credential] => {
            let credential = (*credential).to_owned();
            match *method {
                Method::GET => state.directory.update(|setup| {
                    let app = find_app(setup, &key)?;
                    if !caller.may_read(app) {
                        return Err(GraphError::denied());
                    }
                    let found = find_credential(app, &credential)?;
                    let mut object = credential_json(&app.client_id, &app.federated_credentials[found]);
                    if let Value::Object(map) = &mut object {
                        map.insert(
                            "@odata.context".into(),
                            json!(format!(
                                "{METADATA}#applications('{}')/federatedIdentityCredentials/$entity",
                                application_object_id(&app.client_id)
                            )),
                        );
                    }
                    Ok((StatusCode::OK, Some(object)))
                }),
                Method::PATCH => {
                    let fields = json_object(body)?;
                    state.directory.update(|setup| {
                        update_credential(setup, &key, &caller, &credential, &fields)
                    })
                }
                Method::DELETE => state.directory.update(|setup| {
                    let app = find_app_mut(setup, &key)?;
                    if !caller.may_write(app) {
                        return Err(GraphError::denied());
                    }
                    let found = find_credential(app, &credential)?;
                    app.federated_credentials.remove(found);
                    Ok((StatusCode::NO_CONTENT, None))
                }),
                _ => Err(GraphError::method_not_allowed()),
            }
        }
        [other, ..] => Err(GraphError::unknown_segment(other)),
    }
}

enum AppKey {
    ObjectId(String),
    ClientId(String),
}

impl AppKey {
    fn matches(&self, app: &ApplicationSetup) -> bool {
        match self {
            AppKey::ObjectId(id) => application_object_id(&app.client_id).eq_ignore_ascii_case(id),
            AppKey::ClientId(id) => app.client_id.eq_ignore_ascii_case(id),
        }
    }

    fn describe(&self) -> String {
        match self {
            AppKey::ObjectId(id) => id.clone(),
            AppKey::ClientId(id) => format!("appId='{id}'"),
        }
    }
}

fn find_app<'a>(setup: &'a AzureSetup, key: &AppKey) -> Result<&'a ApplicationSetup, GraphError> {
    setup
        .applications
        .iter()
        .find(|app| key.matches(app))
        .ok_or_else(|| GraphError::not_found(&key.describe()))
}

fn find_app_mut<'a>(
    setup: &'a mut AzureSetup,
    key: &AppKey,
) -> Result<&'a mut ApplicationSetup, GraphError> {
    setup
        .applications
        .iter_mut()
        .find(|app| key.matches(app))
        .ok_or_else(|| GraphError::not_found(&key.describe()))
}

/// A credential by id or by name (Graph accepts either in the path).
fn find_credential(app: &ApplicationSetup, id_or_name: &str) -> Result<usize, GraphError> {
    app.federated_credentials
        .iter()
        .position(|c| {
            c.name == id_or_name
                || credential_id(&app.client_id, &c.name).eq_ignore_ascii_case(id_or_name)
        })
        .ok_or_else(|| GraphError::not_found(id_or_name))
}

fn list_applications(state: &GraphState, caller: &Caller, query: Option<&str>) -> Answer {
    if !caller.may_read_any() {
        return Err(GraphError::denied());
    }
    let params: HashMap<String, String> = query
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let wanted = match params.get("$filter") {
        None => None,
        Some(filter) => Some(parse_app_id_filter(filter).ok_or_else(|| {
            GraphError::bad_request(format!(
                "Unsupported or invalid query filter clause specified: '{filter}'. The emulator supports appId eq '{{clientId}}'."
            ))
        })?),
    };
    let setup = state.directory.snapshot();
    let value: Vec<Value> = setup
        .applications
        .iter()
        .filter(|app| {
            wanted
                .as_deref()
                .is_none_or(|id| app.client_id.eq_ignore_ascii_case(id))
        })
        .filter(|app| caller.may_read(app))
        .map(|app| Value::Object(application_json(app)))
        .collect();
    Ok((
        StatusCode::OK,
        Some(json!({"@odata.context": format!("{METADATA}#applications"), "value": value})),
    ))
}

/// `appId eq 'GUID'` → the GUID.
fn parse_app_id_filter(filter: &str) -> Option<String> {
    let rest = filter.trim().strip_prefix("appId")?.trim_start();
    let rest = rest.strip_prefix("eq")?.trim_start();
    let value = rest.strip_prefix('\'')?.strip_suffix('\'')?;
    (!value.is_empty() && !value.contains('\'')).then(|| value.to_owned())
}

fn application_json(app: &ApplicationSetup) -> Map<String, Value> {
    let mut object = Map::new();
    object.insert("id".into(), json!(application_object_id(&app.client_id)));
    object.insert("appId".into(), json!(app.client_id));
    object.insert("displayName".into(), json!(app.display_name));
    object.insert("signInAudience".into(), json!("AzureADMyOrg"));
    object
}

fn credential_json(client_id: &str, credential: &FederatedCredentialSetup) -> Value {
    json!({
        "id": credential_id(client_id, &credential.name),
        "name": credential.name,
        "issuer": credential.issuer,
        "subject": credential.subject,
        "description": credential.description,
        "audiences": credential.audiences,
    })
}

fn json_object(body: &[u8]) -> Result<Map<String, Value>, GraphError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(GraphError::bad_request(
            "Write requests (excluding DELETE) must contain the Content-Type header declaration.",
        )),
    }
}

fn string_field(fields: &Map<String, Value>, name: &str) -> Result<Option<String>, GraphError> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(GraphError::bad_request(format!(
            "Invalid value specified for property '{name}' of resource 'FederatedIdentityCredential'."
        ))),
    }
}

fn audiences_field(fields: &Map<String, Value>) -> Result<Option<Vec<String>>, GraphError> {
    let Some(value) = fields.get("audiences") else {
        return Ok(None);
    };
    let audiences: Vec<String> = match value {
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(|| {
                GraphError::bad_request(
                    "Invalid value specified for property 'audiences' of resource 'FederatedIdentityCredential'.",
                )
            })?,
        _ => {
            return Err(GraphError::bad_request(
                "Invalid value specified for property 'audiences' of resource 'FederatedIdentityCredential'.",
            ));
        }
    };
    if audiences.len() != 1 {
        return Err(GraphError::bad_request(format!(
            "Audiences must contain exactly one value; {} were given.",
            audiences.len()
        )));
    }
    Ok(Some(audiences))
}

fn required(value: Option<String>, name: &str) -> Result<String, GraphError> {
    value.filter(|v| !v.is_empty()).ok_or_else(|| {
        GraphError::bad_request(format!(
            "Property '{name}' is required for resource 'FederatedIdentityCredential'."
        ))
    })
}

/// Entra accepts only https issuers on a federated identity credential.
fn https_issuer(issuer: String) -> Result<String, GraphError> {
    if issuer.starts_with("https://") {
        Ok(issuer)
    } else {
        Err(GraphError::bad_request(format!(
            "The issuer '{issuer}' of a federated identity credential must be a valid https URL."
        )))
    }
}

/// Graph's checks on a new credential: name unique (409), issuer + subject unique (400), at
/// most 20 per application, exactly one audience.
fn create_credential(
    setup: &mut AzureSetup,
    key: &AppKey,
    caller: &Caller,
    fields: &Map<String, Value>,
) -> Answer {
    let app = find_app_mut(setup, key)?;
    if !caller.may_write(app) {
        return Err(GraphError::denied());
    }
    let name = required(string_field(fields, "name")?, "name")?;
    let issuer = https_issuer(required(string_field(fields, "issuer")?, "issuer")?)?;
    let subject = required(string_field(fields, "subject")?, "subject")?;
    let audiences = audiences_field(fields)?.ok_or_else(|| {
        GraphError::bad_request(
            "Property 'audiences' is required for resource 'FederatedIdentityCredential'.",
        )
    })?;
    let description = string_field(fields, "description")?;
    if name.len() > 120 {
        return Err(GraphError::bad_request(
            "The name of a federated identity credential is limited to 120 characters.",
        ));
    }
    if app.federated_credentials.iter().any(|c| c.name == name) {
        return Err(GraphError::name_taken(&name));
    }
    if app
        .federated_credentials
        .iter()
        .any(|c| c.issuer == issuer && c.subject == subject)
    {
        return Err(GraphError::issuer_subject_taken(&issuer, &subject));
    }
    if app.federated_credentials.len() >= MAX_FEDERATED_CREDENTIALS_PER_APP {
        return Err(GraphError::bad_request(format!(
            "The application already has the maximum of {MAX_FEDERATED_CREDENTIALS_PER_APP} federated identity credentials."
        )));
    }
    let credential = FederatedCredentialSetup {
        name,
        issuer,
        subject,
        audiences,
        description,
    };
    let mut object = credential_json(&app.client_id, &credential);
    if let Value::Object(map) = &mut object {
        map.insert(
            "@odata.context".into(),
            json!(format!(
                "{METADATA}#applications('{}')/federatedIdentityCredentials/$entity",
                application_object_id(&app.client_id)
            )),
        );
    }
    app.federated_credentials.push(credential);
    Ok((StatusCode::CREATED, Some(object)))
}

/// PATCH: issuer, subject, audiences and description may change; the name may not.
fn update_credential(
    setup: &mut AzureSetup,
    key: &AppKey,
    caller: &Caller,
    id_or_name: &str,
    fields: &Map<String, Value>,
) -> Answer {
    let app = find_app_mut(setup, key)?;
    if !caller.may_write(app) {
        return Err(GraphError::denied());
    }
    let index = find_credential(app, id_or_name)?;
    if let Some(name) = string_field(fields, "name")?
        && name != app.federated_credentials[index].name
    {
        return Err(GraphError::bad_request(
            "Property 'name' is read-only and cannot be changed.",
        ));
    }
    let mut updated = app.federated_credentials[index].clone();
    if let Some(issuer) = string_field(fields, "issuer")? {
        updated.issuer = https_issuer(required(Some(issuer), "issuer")?)?;
    }
    if let Some(subject) = string_field(fields, "subject")? {
        updated.subject = required(Some(subject), "subject")?;
    }
    if let Some(audiences) = audiences_field(fields)? {
        updated.audiences = audiences;
    }
    if fields.contains_key("description") {
        updated.description = string_field(fields, "description")?;
    }
    if app
        .federated_credentials
        .iter()
        .enumerate()
        .any(|(i, c)| i != index && c.issuer == updated.issuer && c.subject == updated.subject)
    {
        return Err(GraphError::issuer_subject_taken(
            &updated.issuer,
            &updated.subject,
        ));
    }
    app.federated_credentials[index] = updated;
    Ok((StatusCode::NO_CONTENT, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_id_filters_parse() {
        assert_eq!(
            parse_app_id_filter("appId eq '11111111-2222-3333-4444-555555555555'").as_deref(),
            Some("11111111-2222-3333-4444-555555555555")
        );
        assert_eq!(parse_app_id_filter("displayName eq 'x'"), None);
        assert_eq!(parse_app_id_filter("appId eq x"), None);
    }

    #[test]
    fn ids_are_stable_and_distinct() {
        let app = application_object_id("11111111-2222-3333-4444-555555555555");
        assert_eq!(
            app,
            application_object_id("11111111-2222-3333-4444-555555555555")
        );
        assert_ne!(
            app,
            super::super::access_token::object_id_for("11111111-2222-3333-4444-555555555555")
        );
        assert_ne!(
            credential_id("a", "x"),
            credential_id("a", "y"),
            "names give different ids"
        );
    }
}
