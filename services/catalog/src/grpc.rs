//! The gRPC adapter: converts between the contract's messages and the domain, and nothing else.

use std::collections::BTreeMap;

use fulfillment_access::{ByMode, Need, Policy};
use fulfillment_errors::{FieldViolation, Violations};
use fulfillment_proto::catalog::v1 as pb;
use fulfillment_proto::catalog::v1::catalog_service_server::CatalogService;
use fulfillment_proto::time::timestamp;
use fulfillment_server::request::{mask_fields, non_empty, time_range};
use fulfillment_storage::paging::page_size;
use tonic::{Request, Response, Status};

use crate::catalog::Catalog;
use crate::domain::{self, Inconsistency, Sku, SkuAttributes, SkuChanges, SkuField, SkuFilter};
use crate::error::CatalogError;
use crate::store::ManufacturerPart;

/// The Catalog's gRPC service.
#[derive(Clone, Debug)]
pub struct CatalogGrpc {
    catalogs: ByMode<Catalog>,
}

impl CatalogGrpc {
    /// Serves the live and the test Catalog over gRPC, each call from the one of its key's mode.
    pub fn new(catalogs: ByMode<Catalog>) -> Self {
        Self { catalogs }
    }

    /// What each RPC needs of its caller's key.
    pub fn policy(policy: Policy) -> Policy {
        use fulfillment_proto::catalog::v1::catalog_service_server::SERVICE_NAME;
        policy.service(
            SERVICE_NAME,
            &[
                ("CreateSku", Need::Write),
                ("UpsertSku", Need::Write),
                ("UpdateSku", Need::Write),
                ("GetSku", Need::Read),
                ("ListSkus", Need::Read),
                ("DeleteSku", Need::Write),
                ("RegisterManufacturerPart", Need::Write),
                ("ListManufacturerParts", Need::Read),
                ("DeleteManufacturerPart", Need::Write),
                ("CheckConsistency", Need::Read),
            ],
        )
    }
}

fn status(error: CatalogError) -> Status {
    error.into_status()
}

/// SKUs and items a consistency check looks at per call when the caller names no page size.
const CONSISTENCY_PAGE: u64 = 100;

fn invalid(violations: impl Into<Violations>) -> Status {
    status(CatalogError::InvalidRequest(violations.into()))
}

#[tonic::async_trait]
impl CatalogService for CatalogGrpc {
    async fn create_sku(
        &self,
        request: Request<pb::CreateSkuRequest>,
    ) -> Result<Response<pb::CreateSkuResponse>, Status> {
        let catalog = self.catalogs.pick(&request)?;
        let sku = request.into_inner().sku.unwrap_or_default();
        let id = non_empty(sku.id.clone());
        let created = catalog.create_sku(id, attributes(sku)?).await.map_err(status)?;
        Ok(Response::new(pb::CreateSkuResponse { sku: Some(to_proto(created)) }))
    }

    async fn upsert_sku(
        &self,
        request: Request<pb::UpsertSkuRequest>,
    ) -> Result<Response<pb::UpsertSkuResponse>, Status> {
        let catalog = self.catalogs.pick(&request)?;
        let sku = request.into_inner().sku.unwrap_or_default();
        let id = non_empty(sku.id.clone()).ok_or_else(|| invalid(FieldViolation::missing("id")))?;
        let (sku, created) = catalog.upsert_sku(id, attributes(sku)?).await.map_err(status)?;
        Ok(Response::new(pb::UpsertSkuResponse { sku: Some(to_proto(sku)), created }))
    }

    async fn update_sku(
        &self,
        request: Request<pb::UpdateSkuRequest>,
    ) -> Result<Response<pb::UpdateSkuResponse>, Status> {
        let catalog = self.catalogs.pick(&request)?;
        let request = request.into_inner();
        let sku = request.sku.unwrap_or_default();
        let id = non_empty(sku.id.clone()).ok_or_else(|| invalid(FieldViolation::missing("id")))?;
        let values = attributes(sku)?;
        let changes = match request.update_mask.filter(|mask| !mask.paths.is_empty()) {
            None => SkuChanges::set_present(values),
            Some(mask) => {
                SkuChanges { fields: mask_fields(&mask.paths, SkuField::from_path).map_err(invalid)?, values }
            }
        };
        let updated = catalog.update_sku(&id, changes).await.map_err(status)?;
        Ok(Response::new(pb::UpdateSkuResponse { sku: Some(to_proto(updated)) }))
    }

    async fn get_sku(&self, request: Request<pb::GetSkuRequest>) -> Result<Response<pb::GetSkuResponse>, Status> {
        let catalog = self.catalogs.pick(&request)?;
        let sku = catalog.get_sku(&request.into_inner().id).await.map_err(status)?;
        Ok(Response::new(pb::GetSkuResponse { sku: Some(to_proto(sku)) }))
    }

    async fn list_skus(&self, request: Request<pb::ListSkusRequest>) -> Result<Response<pb::ListSkusResponse>, Status> {
        let catalog = self.catalogs.pick(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let size = page_size(request.page_size).map_err(|v| violations.push(v)).unwrap_or_default();
        let filter = SkuFilter {
            ids: request.ids,
            eccn: non_empty(request.eccn),
            part_number: non_empty(request.part_number),
            hs_code: non_empty(request.hs_code),
            tax_code: non_empty(request.tax_code),
            sku_group_id: non_empty(request.sku_group_id),
            created: time_range(request.created_time, "createdTime", &mut violations),
            updated: time_range(request.updated_time, "updatedTime", &mut violations),
        };
        if !violations.is_empty() {
            return Err(invalid(violations));
        }
        let page = catalog.list_skus(&filter, size, &request.page_token).await.map_err(status)?;
        Ok(Response::new(pb::ListSkusResponse {
            skus: page.items.into_iter().map(to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn delete_sku(
        &self,
        request: Request<pb::DeleteSkuRequest>,
    ) -> Result<Response<pb::DeleteSkuResponse>, Status> {
        let catalog = self.catalogs.pick(&request)?;
        catalog.delete_sku(&request.into_inner().id).await.map_err(status)?;
        Ok(Response::new(pb::DeleteSkuResponse {}))
    }

    async fn register_manufacturer_part(
        &self,
        request: Request<pb::RegisterManufacturerPartRequest>,
    ) -> Result<Response<pb::RegisterManufacturerPartResponse>, Status> {
        let catalog = self.catalogs.pick(&request)?;
        let request = request.into_inner();
        let part =
            catalog.register_manufacturer_part(&request.manufacturer_id, &request.part_number).await.map_err(status)?;
        Ok(Response::new(pb::RegisterManufacturerPartResponse { manufacturer_part: Some(part_to_proto(part)) }))
    }

    async fn list_manufacturer_parts(
        &self,
        request: Request<pb::ListManufacturerPartsRequest>,
    ) -> Result<Response<pb::ListManufacturerPartsResponse>, Status> {
        let catalog = self.catalogs.pick(&request)?;
        let request = request.into_inner();
        let size = page_size(request.page_size).map_err(invalid)?;
        let manufacturer_id = non_empty(request.manufacturer_id);
        let part_number = non_empty(request.part_number);
        let page = catalog
            .list_manufacturer_parts(manufacturer_id.as_deref(), part_number.as_deref(), size, &request.page_token)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListManufacturerPartsResponse {
            manufacturer_parts: page.items.into_iter().map(part_to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn delete_manufacturer_part(
        &self,
        request: Request<pb::DeleteManufacturerPartRequest>,
    ) -> Result<Response<pb::DeleteManufacturerPartResponse>, Status> {
        let catalog = self.catalogs.pick(&request)?;
        let request = request.into_inner();
        catalog.delete_manufacturer_part(&request.manufacturer_id, &request.part_number).await.map_err(status)?;
        Ok(Response::new(pb::DeleteManufacturerPartResponse {}))
    }

    async fn check_consistency(
        &self,
        request: Request<pb::CheckConsistencyRequest>,
    ) -> Result<Response<pb::CheckConsistencyResponse>, Status> {
        let catalog = self.catalogs.pick(&request)?;
        let request = request.into_inner();
        let size = match request.page_size {
            0 => CONSISTENCY_PAGE,
            requested => page_size(requested).map_err(invalid)?,
        };
        let (found, next_page_token) = catalog.check_consistency(size, &request.page_token).await.map_err(status)?;
        let inconsistencies = found
            .into_iter()
            .map(|finding| {
                let (sku_id, kind) = match finding {
                    Inconsistency::MissingItem(id) => (id, pb::InconsistencyKind::MissingItem),
                    Inconsistency::ItemDiffers(id) => (id, pb::InconsistencyKind::ItemDiffers),
                    Inconsistency::OrphanItem(id) => (id, pb::InconsistencyKind::OrphanItem),
                    Inconsistency::OpenSaga(id) => (id, pb::InconsistencyKind::OpenSaga),
                };
                pb::Inconsistency { sku_id, kind: kind.into() }
            })
            .collect();
        Ok(Response::new(pb::CheckConsistencyResponse { inconsistencies, next_page_token }))
    }
}

/// The attributes a request sets: empty strings, empty maps and `false` flags count as not set.
/// The attributes a request sets, its metadata counted before it is copied.
fn attributes(sku: pb::Sku) -> Result<SkuAttributes, Status> {
    domain::metadata_count(sku.metadata.len()).map_err(invalid)?;
    Ok(SkuAttributes {
        name: non_empty(sku.name),
        description: non_empty(sku.description),
        eccn: non_empty(sku.eccn),
        tax_code: non_empty(sku.tax_code),
        country_of_origin: non_empty(sku.country_of_origin),
        hs_code: non_empty(sku.hs_code),
        sku_group_id: non_empty(sku.sku_group_id),
        manufacturer_id: non_empty(sku.manufacturer_id),
        part_number: non_empty(sku.part_number),
        image: non_empty(sku.image),
        url: non_empty(sku.url),
        weight: sku.weight,
        weight_unit: non_empty(sku.weight_unit),
        allow_oversell: sku.allow_oversell,
        fulfill: sku.fulfill.then_some(true),
        managed_fulfillment: non_empty(sku.managed_fulfillment),
        item_breadcrumb: non_empty(sku.item_breadcrumb),
        metadata: (!sku.metadata.is_empty()).then(|| sku.metadata.into_iter().collect::<BTreeMap<_, _>>()),
    })
}

fn to_proto(sku: Sku) -> pb::Sku {
    let a = sku.attributes;
    pb::Sku {
        id: sku.id,
        name: a.name.unwrap_or_default(),
        description: a.description.unwrap_or_default(),
        eccn: a.eccn.unwrap_or_default(),
        tax_code: a.tax_code.unwrap_or_default(),
        country_of_origin: a.country_of_origin.unwrap_or_default(),
        hs_code: a.hs_code.unwrap_or_default(),
        sku_group_id: a.sku_group_id.unwrap_or_default(),
        manufacturer_id: a.manufacturer_id.unwrap_or_default(),
        part_number: a.part_number.unwrap_or_default(),
        image: a.image.unwrap_or_default(),
        url: a.url.unwrap_or_default(),
        weight: a.weight,
        weight_unit: a.weight_unit.unwrap_or_default(),
        allow_oversell: a.allow_oversell,
        fulfill: a.fulfill.unwrap_or_default(),
        managed_fulfillment: a.managed_fulfillment.unwrap_or_default(),
        item_breadcrumb: a.item_breadcrumb.unwrap_or_default(),
        metadata: a.metadata.unwrap_or_default().into_iter().collect(),
        physical: sku.physical,
        live_mode: sku.live_mode,
        created_time: Some(timestamp(sku.created_time)),
        updated_time: Some(timestamp(sku.updated_time)),
    }
}

fn part_to_proto(part: ManufacturerPart) -> pb::ManufacturerPart {
    pb::ManufacturerPart {
        manufacturer_id: part.manufacturer_id,
        part_number: part.part_number,
        created_time: Some(timestamp(part.created_time)),
    }
}
