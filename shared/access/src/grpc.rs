//! The access RPCs: converting between the contract's messages and the registry.

use fulfillment_errors::ApiError;
use fulfillment_proto::access::v1 as pb;
use fulfillment_proto::access::v1::access_service_server::AccessService;
use fulfillment_proto::time::{date_time, timestamp};
use tonic::{Request, Response, Status};

use crate::gate::{Need, Policy};
use crate::key::{KeyKind, Scope};
use crate::registry::{ApiKey, NewKey, Registry};
use crate::{AccessError, DOMAIN, principal};

/// The most scopes a request may name: each of the three once.
const MAX_SCOPES: usize = 3;

/// The access RPCs over a registry.
#[derive(Clone, Debug)]
pub struct AccessGrpc {
    registry: Registry,
}

impl AccessGrpc {
    /// Serves `registry`.
    pub fn new(registry: Registry) -> Self {
        Self { registry }
    }

    /// What each access RPC needs of its caller's key.
    pub fn policy(policy: Policy) -> Policy {
        use fulfillment_proto::access::v1::access_service_server::SERVICE_NAME;
        policy.service(
            SERVICE_NAME,
            &[
                ("CreateApiKey", Need::Admin),
                ("ListApiKeys", Need::Admin),
                ("RevokeApiKey", Need::Admin),
                ("AuthenticateApiKey", Need::Service),
            ],
        )
    }
}

fn status(error: AccessError) -> Status {
    ApiError::from(error).into_status(DOMAIN)
}

#[tonic::async_trait]
impl AccessService for AccessGrpc {
    async fn create_api_key(
        &self,
        request: Request<pb::CreateApiKeyRequest>,
    ) -> Result<Response<pb::CreateApiKeyResponse>, Status> {
        let caller = principal(&request)?.key.kind;
        let request = request.into_inner();
        // An identity that passes the ownership guards is the deployment's to give, so that a
        // leaked admin key cannot act as the Catalog or the Reservation service.
        if !request.service.is_empty() {
            return Err(status(AccessError::ServiceKeyFromDeployment));
        }
        let kind = if caller == KeyKind::Test { KeyKind::Test } else { KeyKind::Live };
        if request.scopes.len() > MAX_SCOPES {
            return Err(status(AccessError::invalid(
                "scopes",
                "A key has at most the three scopes read, write and admin.",
            )));
        }
        let scopes = if request.scopes.is_empty() {
            vec![Scope::Read, Scope::Write]
        } else {
            request.scopes.iter().map(|s| scope_from_proto(*s)).collect::<Result<_, _>>().map_err(status)?
        };
        let new = NewKey { name: request.name, kind, scopes, service: None };
        let (key, secret) = self.registry.create(new).await.map_err(status)?;
        tracing::info!(key = %key.prefix, kind = ?key.kind, "API key created");
        Ok(Response::new(pb::CreateApiKeyResponse { api_key: Some(key_to_proto(key)), secret }))
    }

    async fn list_api_keys(
        &self,
        request: Request<pb::ListApiKeysRequest>,
    ) -> Result<Response<pb::ListApiKeysResponse>, Status> {
        let live = principal(&request)?.key.is_live();
        let keys = self.registry.list(live, request.into_inner().include_revoked).await.map_err(status)?;
        Ok(Response::new(pb::ListApiKeysResponse { api_keys: keys.into_iter().map(key_to_proto).collect() }))
    }

    async fn revoke_api_key(
        &self,
        request: Request<pb::RevokeApiKeyRequest>,
    ) -> Result<Response<pb::RevokeApiKeyResponse>, Status> {
        let live = principal(&request)?.key.is_live();
        let key = self.registry.revoke(&request.into_inner().id, live).await.map_err(status)?;
        tracing::info!(key = %key.prefix, "API key revoked");
        Ok(Response::new(pb::RevokeApiKeyResponse { api_key: Some(key_to_proto(key)) }))
    }

    async fn authenticate_api_key(
        &self,
        request: Request<pb::AuthenticateApiKeyRequest>,
    ) -> Result<Response<pb::AuthenticateApiKeyResponse>, Status> {
        let key = self.registry.authenticate(&request.into_inner().secret).await.map_err(status)?;
        Ok(Response::new(pb::AuthenticateApiKeyResponse { api_key: key.map(key_to_proto) }))
    }
}

fn scope_from_proto(scope: i32) -> Result<Scope, AccessError> {
    match pb::Scope::try_from(scope) {
        Ok(pb::Scope::Read) => Ok(Scope::Read),
        Ok(pb::Scope::Write) => Ok(Scope::Write),
        Ok(pb::Scope::Admin) => Ok(Scope::Admin),
        _ => Err(AccessError::invalid("scopes", "A scope is read, write or admin.")),
    }
}

fn scope_to_proto(scope: Scope) -> pb::Scope {
    match scope {
        Scope::Read => pb::Scope::Read,
        Scope::Write => pb::Scope::Write,
        Scope::Admin => pb::Scope::Admin,
    }
}

/// A key as the contract shows it.
pub fn key_to_proto(key: ApiKey) -> pb::ApiKey {
    pb::ApiKey {
        live_mode: key.kind != KeyKind::Test,
        id: key.id,
        name: key.name,
        prefix: key.prefix,
        scopes: key.scopes.into_iter().map(|s| scope_to_proto(s).into()).collect(),
        service: key.service.unwrap_or_default(),
        created_time: Some(timestamp(key.created_time)),
        revoked_time: key.revoked_time.map(timestamp),
    }
}

/// A key as another service answered it.
pub(crate) fn key_from_proto(key: pb::ApiKey) -> Result<ApiKey, AccessError> {
    let kind = match (key.service.is_empty(), key.live_mode) {
        (false, _) => KeyKind::Service,
        (true, true) => KeyKind::Live,
        (true, false) => KeyKind::Test,
    };
    let created_time = key.created_time.and_then(|t| date_time(&t)).unwrap_or_default();
    Ok(ApiKey {
        scopes: key.scopes.iter().map(|s| scope_from_proto(*s)).collect::<Result<_, _>>()?,
        service: (!key.service.is_empty()).then_some(key.service),
        revoked_time: key.revoked_time.and_then(|t| date_time(&t)),
        id: key.id,
        name: key.name,
        prefix: key.prefix,
        kind,
        created_time,
    })
}
