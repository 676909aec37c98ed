//! The gRPC adapter: converts between the contract's messages and the domain, and nothing else.

use fulfillment_access::{ByMode, Need, Policy, principal};
use fulfillment_errors::{FieldViolation, Violations};
use fulfillment_proto::inventory::v1 as pb;
use fulfillment_proto::inventory::v1::inventory_service_server::InventoryService;
use fulfillment_proto::time::{date_time, timestamp};
use fulfillment_server::request::{mask_fields, non_empty, time_range};
use fulfillment_storage::paging::page_size;
use tonic::{Request, Response, Status};

use crate::InventoryError;
use crate::domain::{
    Caller, Hold, HoldLine, HoldRequest, HoldState, InventoryItem, StockChange, StockLevel, StockMovement, Warehouse,
    ship_to_countries,
};
use crate::inventory::Inventory;
use crate::items::{ItemField, ItemFields, ItemFilter};
use crate::stock::{ItemLevel, StockChangeRequest};
use crate::warehouses::{WarehouseField, WarehouseFields};

/// The Inventory's gRPC service.
#[derive(Clone, Debug)]
pub struct InventoryGrpc {
    inventories: ByMode<Inventory>,
}

impl InventoryGrpc {
    /// Serves the live and the test Inventory over gRPC, each call from the one of its key's mode.
    pub fn new(inventories: ByMode<Inventory>) -> Self {
        Self { inventories }
    }

    /// What each RPC needs of its caller's key.
    pub fn policy(policy: Policy) -> Policy {
        use fulfillment_proto::inventory::v1::inventory_service_server::SERVICE_NAME;
        policy.service(
            SERVICE_NAME,
            &[
                ("CreateInventoryItem", Need::Write),
                ("UpdateInventoryItem", Need::Write),
                ("GetInventoryItem", Need::Read),
                ("ListInventoryItems", Need::Read),
                ("DeleteInventoryItem", Need::Write),
                ("CreateWarehouse", Need::Write),
                ("UpdateWarehouse", Need::Write),
                ("GetWarehouse", Need::Read),
                ("ListWarehouses", Need::Read),
                ("DeleteWarehouse", Need::Write),
                ("AdjustStock", Need::Write),
                ("ListStockMovements", Need::Read),
                ("GetInventoryLevels", Need::Read),
                ("PlaceHold", Need::Write),
                ("GetHold", Need::Read),
                ("ReleaseHold", Need::Write),
                ("CommitHold", Need::Write),
            ],
        )
    }
}

fn status(error: InventoryError) -> Status {
    error.into_status()
}

fn invalid(violations: impl Into<Violations>) -> Status {
    status(InventoryError::InvalidRequest(violations.into()))
}

/// The Catalog and the Reservation service, known by their service keys (never by anything a
/// client can put in metadata), own SKU items and reservation holds.
fn caller<T>(request: &Request<T>) -> Caller {
    match principal(request) {
        Ok(principal) if principal.is_service("catalog") => Caller::Catalog,
        Ok(principal) if principal.is_service("reservation") => Caller::Reservation,
        _ => Caller::Client,
    }
}

fn size(requested: i32) -> Result<u64, Status> {
    page_size(requested).map_err(invalid)
}

#[tonic::async_trait]
impl InventoryService for InventoryGrpc {
    async fn create_inventory_item(
        &self,
        request: Request<pb::CreateInventoryItemRequest>,
    ) -> Result<Response<pb::CreateInventoryItemResponse>, Status> {
        let inventory = self.inventories.pick(&request)?;
        let caller = caller(&request);
        let item = request.into_inner().inventory_item.unwrap_or_default();
        let (id, owner) = (non_empty(item.id.clone()), non_empty(item.owner_sku_id.clone()));
        let created = inventory.create_item(id, item_fields(item), owner, caller).await.map_err(status)?;
        Ok(Response::new(pb::CreateInventoryItemResponse { inventory_item: Some(item_to_proto(created)) }))
    }

    async fn update_inventory_item(
        &self,
        request: Request<pb::UpdateInventoryItemRequest>,
    ) -> Result<Response<pb::UpdateInventoryItemResponse>, Status> {
        let inventory = self.inventories.pick(&request)?;
        let caller = caller(&request);
        let request = request.into_inner();
        let item = request.inventory_item.unwrap_or_default();
        let id = item.id.clone();
        let fields = item_fields(item);
        let mask = match request.update_mask.filter(|m| !m.paths.is_empty()) {
            None => fields.present_fields(),
            Some(mask) => mask_fields(&mask.paths, ItemField::from_path).map_err(invalid)?,
        };
        let updated = inventory.update_item(&id, fields, mask, caller).await.map_err(status)?;
        Ok(Response::new(pb::UpdateInventoryItemResponse { inventory_item: Some(item_to_proto(updated)) }))
    }

    async fn get_inventory_item(
        &self,
        request: Request<pb::GetInventoryItemRequest>,
    ) -> Result<Response<pb::GetInventoryItemResponse>, Status> {
        let inventory = self.inventories.pick(&request)?;
        let item = inventory.get_item(&request.into_inner().id).await.map_err(status)?;
        Ok(Response::new(pb::GetInventoryItemResponse { inventory_item: Some(item_to_proto(item)) }))
    }

    async fn list_inventory_items(
        &self,
        request: Request<pb::ListInventoryItemsRequest>,
    ) -> Result<Response<pb::ListInventoryItemsResponse>, Status> {
        let inventory = self.inventories.pick(&request)?;
        let request = request.into_inner();
        let page_size = size(request.page_size)?;
        let mut violations = Violations::new();
        let filter = ItemFilter {
            ids: request.ids,
            manufacturer_id: non_empty(request.manufacturer_id),
            part_number: non_empty(request.part_number),
            created: time_range(request.created_time, "createdTime", &mut violations),
            updated: time_range(request.updated_time, "updatedTime", &mut violations),
        };
        if !violations.is_empty() {
            return Err(invalid(violations));
        }
        let page = inventory.list_items(&filter, page_size, &request.page_token).await.map_err(status)?;
        Ok(Response::new(pb::ListInventoryItemsResponse {
            inventory_items: page.items.into_iter().map(item_to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn delete_inventory_item(
        &self,
        request: Request<pb::DeleteInventoryItemRequest>,
    ) -> Result<Response<pb::DeleteInventoryItemResponse>, Status> {
        let inventory = self.inventories.pick(&request)?;
        let caller = caller(&request);
        inventory.delete_item(&request.into_inner().id, caller).await.map_err(status)?;
        Ok(Response::new(pb::DeleteInventoryItemResponse {}))
    }

    async fn create_warehouse(
        &self,
        request: Request<pb::CreateWarehouseRequest>,
    ) -> Result<Response<pb::CreateWarehouseResponse>, Status> {
        let inventory = self.inventories.pick(&request)?;
        let warehouse = request.into_inner().warehouse.unwrap_or_default();
        let id = non_empty(warehouse.id.clone());
        let created = inventory.create_warehouse(id, warehouse_fields(warehouse)).await.map_err(status)?;
        Ok(Response::new(pb::CreateWarehouseResponse { warehouse: Some(warehouse_to_proto(created)) }))
    }

    async fn update_warehouse(
        &self,
        request: Request<pb::UpdateWarehouseRequest>,
    ) -> Result<Response<pb::UpdateWarehouseResponse>, Status> {
        let inventory = self.inventories.pick(&request)?;
        let request = request.into_inner();
        let warehouse = request.warehouse.unwrap_or_default();
        let id = warehouse.id.clone();
        let fields = warehouse_fields(warehouse);
        let mask = match request.update_mask.filter(|m| !m.paths.is_empty()) {
            None => fields.present_fields(),
            Some(mask) => mask_fields(&mask.paths, WarehouseField::from_path).map_err(invalid)?,
        };
        let updated = inventory.update_warehouse(&id, fields, mask).await.map_err(status)?;
        Ok(Response::new(pb::UpdateWarehouseResponse { warehouse: Some(warehouse_to_proto(updated)) }))
    }

    async fn get_warehouse(
        &self,
        request: Request<pb::GetWarehouseRequest>,
    ) -> Result<Response<pb::GetWarehouseResponse>, Status> {
        let inventory = self.inventories.pick(&request)?;
        let warehouse = inventory.get_warehouse(&request.into_inner().id).await.map_err(status)?;
        Ok(Response::new(pb::GetWarehouseResponse { warehouse: Some(warehouse_to_proto(warehouse)) }))
    }

    async fn list_warehouses(
        &self,
        request: Request<pb::ListWarehousesRequest>,
    ) -> Result<Response<pb::ListWarehousesResponse>, Status> {
        let inventory = self.inventories.pick(&request)?;
        let request = request.into_inner();
        let page = inventory.list_warehouses(size(request.page_size)?, &request.page_token).await.map_err(status)?;
        Ok(Response::new(pb::ListWarehousesResponse {
            warehouses: page.items.into_iter().map(warehouse_to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn delete_warehouse(
        &self,
        request: Request<pb::DeleteWarehouseRequest>,
    ) -> Result<Response<pb::DeleteWarehouseResponse>, Status> {
        let inventory = self.inventories.pick(&request)?;
        inventory.delete_warehouse(&request.into_inner().id).await.map_err(status)?;
        Ok(Response::new(pb::DeleteWarehouseResponse {}))
    }

    async fn adjust_stock(
        &self,
        request: Request<pb::AdjustStockRequest>,
    ) -> Result<Response<pb::AdjustStockResponse>, Status> {
        let inventory = self.inventories.pick(&request)?;
        let request = request.into_inner();
        let change = match pb::StockChangeKind::try_from(request.kind) {
            Ok(pb::StockChangeKind::Receive) => StockChange::Receive,
            Ok(pb::StockChangeKind::Adjust) => StockChange::Adjust,
            Ok(pb::StockChangeKind::Set) => StockChange::Set,
            _ => {
                let kind = request.kind.to_string();
                return Err(invalid(FieldViolation::not_valid("kind", &kind, "stock change kind")));
            }
        };
        let (level, movement) = inventory
            .change_stock(StockChangeRequest {
                inventory_item_id: request.inventory_item_id,
                warehouse_id: request.warehouse_id,
                change,
                quantity: request.quantity,
                reason: request.reason,
                idempotency_key: request.idempotency_key,
            })
            .await
            .map_err(status)?;
        Ok(Response::new(pb::AdjustStockResponse {
            level: Some(level_to_proto(level)),
            movement: Some(movement_to_proto(movement)),
        }))
    }

    async fn list_stock_movements(
        &self,
        request: Request<pb::ListStockMovementsRequest>,
    ) -> Result<Response<pb::ListStockMovementsResponse>, Status> {
        let inventory = self.inventories.pick(&request)?;
        let request = request.into_inner();
        let page = inventory
            .list_movements(&request.inventory_item_id, size(request.page_size)?, &request.page_token)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListStockMovementsResponse {
            movements: page.items.into_iter().map(movement_to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn get_inventory_levels(
        &self,
        request: Request<pb::GetInventoryLevelsRequest>,
    ) -> Result<Response<pb::GetInventoryLevelsResponse>, Status> {
        let inventory = self.inventories.pick(&request)?;
        let request = request.into_inner();
        let country = non_empty(request.ship_to_country);
        let levels = inventory
            .levels(&request.inventory_item_ids, country.as_deref(), request.min_available)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::GetInventoryLevelsResponse {
            levels: levels.into_iter().map(item_level_to_proto).collect(),
        }))
    }

    async fn place_hold(
        &self,
        request: Request<pb::PlaceHoldRequest>,
    ) -> Result<Response<pb::PlaceHoldResponse>, Status> {
        let inventory = self.inventories.pick(&request)?;
        let placed_by = caller(&request);
        let request = request.into_inner();
        let expire_time = match request.expire_time {
            None => None,
            Some(time) => Some(
                date_time(&time)
                    .ok_or_else(|| invalid(FieldViolation::not_valid("expireTime", &time.to_string(), "time")))?,
            ),
        };
        let hold = inventory
            .place_hold(HoldRequest {
                hold_id: request.hold_id,
                lines: request
                    .lines
                    .into_iter()
                    .map(|line| HoldLine {
                        inventory_item_id: line.inventory_item_id,
                        quantity: line.quantity,
                        allow_oversell: line.allow_oversell,
                    })
                    .collect(),
                ship_to_country: request.ship_to_country,
                expire_time,
                placed_by,
            })
            .await
            .map_err(status)?;
        Ok(Response::new(pb::PlaceHoldResponse { hold: Some(hold_to_proto(hold)) }))
    }

    async fn get_hold(&self, request: Request<pb::GetHoldRequest>) -> Result<Response<pb::GetHoldResponse>, Status> {
        let inventory = self.inventories.pick(&request)?;
        let hold = inventory.get_hold(&request.into_inner().hold_id).await.map_err(status)?;
        Ok(Response::new(pb::GetHoldResponse { hold: Some(hold_to_proto(hold)) }))
    }

    async fn release_hold(
        &self,
        request: Request<pb::ReleaseHoldRequest>,
    ) -> Result<Response<pb::ReleaseHoldResponse>, Status> {
        let inventory = self.inventories.pick(&request)?;
        let caller = caller(&request);
        let hold = inventory.release_hold(&request.into_inner().hold_id, caller).await.map_err(status)?;
        Ok(Response::new(pb::ReleaseHoldResponse { hold: Some(hold_to_proto(hold)) }))
    }

    async fn commit_hold(
        &self,
        request: Request<pb::CommitHoldRequest>,
    ) -> Result<Response<pb::CommitHoldResponse>, Status> {
        let inventory = self.inventories.pick(&request)?;
        let caller = caller(&request);
        let hold = inventory.commit_hold(&request.into_inner().hold_id, caller).await.map_err(status)?;
        Ok(Response::new(pb::CommitHoldResponse { hold: Some(hold_to_proto(hold)) }))
    }
}

fn item_fields(item: pb::InventoryItem) -> ItemFields {
    ItemFields {
        manufacturer_id: non_empty(item.manufacturer_id),
        part_number: non_empty(item.part_number),
        eccn: non_empty(item.eccn),
        hs_code: non_empty(item.hs_code),
        country_of_origin: non_empty(item.country_of_origin),
        allow_oversell: item.allow_oversell,
    }
}

fn item_to_proto(item: InventoryItem) -> pb::InventoryItem {
    pb::InventoryItem {
        id: item.id,
        manufacturer_id: item.manufacturer_id.unwrap_or_default(),
        part_number: item.part_number.unwrap_or_default(),
        eccn: item.eccn.unwrap_or_default(),
        hs_code: item.hs_code.unwrap_or_default(),
        country_of_origin: item.country_of_origin.unwrap_or_default(),
        allow_oversell: Some(item.allow_oversell),
        owner_sku_id: item.owner_sku_id.unwrap_or_default(),
        live_mode: item.live_mode,
        created_time: Some(timestamp(item.created_time)),
        updated_time: Some(timestamp(item.updated_time)),
    }
}

fn warehouse_fields(warehouse: pb::Warehouse) -> WarehouseFields {
    WarehouseFields {
        name: non_empty(warehouse.name),
        country: non_empty(warehouse.country),
        ship_to_countries: (!warehouse.ship_to_countries.is_empty()).then_some(warehouse.ship_to_countries),
        ships_everywhere: warehouse.ships_everywhere.then_some(true),
        priority: (warehouse.priority != 0).then_some(warehouse.priority),
    }
}

fn warehouse_to_proto(warehouse: Warehouse) -> pb::Warehouse {
    pb::Warehouse {
        ship_to_countries: ship_to_countries(&warehouse),
        id: warehouse.id,
        name: warehouse.name,
        country: warehouse.country,
        ships_everywhere: warehouse.ships_everywhere,
        priority: warehouse.priority,
        created_time: Some(timestamp(warehouse.created_time)),
        updated_time: Some(timestamp(warehouse.updated_time)),
    }
}

fn level_to_proto(level: StockLevel) -> pb::StockLevel {
    pb::StockLevel {
        available: level.on_hand - level.reserved,
        inventory_item_id: level.inventory_item_id,
        warehouse_id: level.warehouse_id,
        on_hand: level.on_hand,
        reserved: level.reserved,
    }
}

fn item_level_to_proto(level: ItemLevel) -> pb::InventoryLevel {
    pb::InventoryLevel {
        inventory_item_id: level.inventory_item_id,
        warehouses: level.warehouses.into_iter().map(level_to_proto).collect(),
        on_hand: level.on_hand,
        reserved: level.reserved,
        available: level.available,
    }
}

fn movement_to_proto(movement: StockMovement) -> pb::StockMovement {
    let kind = match movement.kind.as_str() {
        "receive" => pb::StockChangeKind::Receive,
        "adjust" => pb::StockChangeKind::Adjust,
        "set" => pb::StockChangeKind::Set,
        "commit" => pb::StockChangeKind::Commit,
        _ => pb::StockChangeKind::Unspecified,
    };
    pb::StockMovement {
        id: movement.id,
        inventory_item_id: movement.inventory_item_id,
        warehouse_id: movement.warehouse_id,
        delta: movement.delta,
        reason: movement.reason,
        idempotency_key: movement.idempotency_key.unwrap_or_default(),
        created_time: Some(timestamp(movement.created_time)),
        kind: kind.into(),
        on_hand_after: movement.on_hand_after,
        hold_id: movement.hold_id.unwrap_or_default(),
    }
}

fn hold_to_proto(hold: Hold) -> pb::Hold {
    let placed_by = match hold.placed_by {
        None => pb::HoldPlacer::Unspecified,
        Some(Caller::Reservation) => pb::HoldPlacer::Reservation,
        Some(Caller::Catalog) => pb::HoldPlacer::Catalog,
        Some(Caller::Client) => pb::HoldPlacer::Client,
    };
    let state = match hold.state {
        HoldState::Held => pb::HoldState::Held,
        HoldState::Committed => pb::HoldState::Committed,
        HoldState::Released => pb::HoldState::Released,
        HoldState::Expired => pb::HoldState::Expired,
    };
    pb::Hold {
        id: hold.id,
        state: state.into(),
        lines: hold
            .lines
            .into_iter()
            .map(|line| pb::HoldRequestLine {
                inventory_item_id: line.inventory_item_id,
                quantity: line.quantity,
                allow_oversell: line.allow_oversell,
            })
            .collect(),
        allocations: hold
            .allocations
            .into_iter()
            .map(|a| pb::HoldAllocation {
                inventory_item_id: a.inventory_item_id,
                warehouse_id: a.warehouse_id,
                quantity: a.quantity,
                oversold_quantity: a.oversold_quantity,
            })
            .collect(),
        ship_to_country: hold.ship_to_country,
        expire_time: Some(timestamp(hold.expire_time)),
        created_time: Some(timestamp(hold.created_time)),
        updated_time: Some(timestamp(hold.updated_time)),
        placed_by: placed_by.into(),
    }
}
