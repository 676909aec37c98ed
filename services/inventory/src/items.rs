//! Inventory items: the inventory item document's attributes, rules and wording.

use fulfillment_errors::{FieldViolation, Violations};
use fulfillment_reference::{MAX_SHORT_TEXT, generate_id, validate_hs_code, validate_text};
use fulfillment_storage::paging::{Cursor, Page, TimeRange};
use sea_orm::sea_query::Query;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
};

use crate::domain::{Caller, HoldState, InventoryItem, StockChange, check, validate_item_id};
use crate::entity::{hold, hold_allocation, inventory_item, stock_level, stock_movement};
use crate::inventory::Inventory;
use crate::store::{RowLock, find_item};
use crate::{InventoryError, retry_lost_insert};

/// The most ids one listing may name.
pub const MAX_LISTED_IDS: usize = 100;

/// The attributes a caller sets on an item; `None` means not given.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ItemFields {
    pub manufacturer_id: Option<String>,
    pub part_number: Option<String>,
    pub eccn: Option<String>,
    pub hs_code: Option<String>,
    pub country_of_origin: Option<String>,
    /// Defaults to false on create.
    pub allow_oversell: Option<bool>,
}

/// An attribute an update may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemField {
    ManufacturerId,
    PartNumber,
    Eccn,
    HsCode,
    CountryOfOrigin,
    AllowOversell,
}

impl ItemField {
    /// The field a mask path names, in snake_case or camelCase.
    pub fn from_path(path: &str) -> Option<Self> {
        match path {
            "manufacturer_id" | "manufacturerId" => Some(ItemField::ManufacturerId),
            "part_number" | "partNumber" => Some(ItemField::PartNumber),
            "eccn" => Some(ItemField::Eccn),
            "hs_code" | "hsCode" => Some(ItemField::HsCode),
            "country_of_origin" | "countryOfOrigin" => Some(ItemField::CountryOfOrigin),
            "allow_oversell" | "allowOversell" => Some(ItemField::AllowOversell),
            _ => None,
        }
    }
}

impl ItemFields {
    /// The fields that are set.
    pub fn present_fields(&self) -> Vec<ItemField> {
        let mut fields = Vec::new();
        let present = [
            (ItemField::ManufacturerId, self.manufacturer_id.is_some()),
            (ItemField::PartNumber, self.part_number.is_some()),
            (ItemField::Eccn, self.eccn.is_some()),
            (ItemField::HsCode, self.hs_code.is_some()),
            (ItemField::CountryOfOrigin, self.country_of_origin.is_some()),
            (ItemField::AllowOversell, self.allow_oversell.is_some()),
        ];
        fields.extend(present.into_iter().filter(|(_, set)| *set).map(|(field, _)| field));
        fields
    }

    fn apply_to(&self, item: &mut InventoryItem, fields: &[ItemField]) {
        for field in fields {
            match field {
                ItemField::ManufacturerId => item.manufacturer_id = self.manufacturer_id.clone(),
                ItemField::PartNumber => item.part_number = self.part_number.clone(),
                ItemField::Eccn => item.eccn = self.eccn.clone(),
                ItemField::HsCode => item.hs_code = self.hs_code.clone(),
                ItemField::CountryOfOrigin => item.country_of_origin = self.country_of_origin.clone(),
                ItemField::AllowOversell => item.allow_oversell = self.allow_oversell.unwrap_or(false),
            }
        }
    }
}

/// The filters of an item listing.
#[derive(Clone, Debug, Default)]
pub struct ItemFilter {
    /// Only these ids, when not empty (at most 100).
    pub ids: Vec<String>,
    pub manufacturer_id: Option<String>,
    pub part_number: Option<String>,
    pub created: TimeRange,
    pub updated: TimeRange,
}

impl Inventory {
    fn validate_item(&self, item: &InventoryItem) -> Result<(), InventoryError> {
        let mut violations = Violations::new();
        let mut push = |result: Result<(), FieldViolation>| violations.extend(result.err());
        if let Some(country) = &item.country_of_origin {
            push(self.reference.validate_country_of_origin(country));
        }
        if let Some(hs_code) = &item.hs_code {
            push(validate_hs_code(hs_code));
        }
        if let Some(eccn) = &item.eccn {
            push(self.reference.validate_eccn(eccn));
        }
        for (parameter, value) in [("manufacturerId", &item.manufacturer_id), ("partNumber", &item.part_number)] {
            if let Some(value) = value {
                push(validate_text(parameter, value, MAX_SHORT_TEXT));
            }
        }
        check(violations)
    }

    /// Creates an item. The same id with identical attributes answers the stored item, so the
    /// Catalog's saga may retry; other attributes are ALREADY_EXISTS. Only the Catalog may name an
    /// owning SKU.
    pub async fn create_item(
        &self,
        id: Option<String>,
        fields: ItemFields,
        owner_sku_id: Option<String>,
        caller: Caller,
    ) -> Result<InventoryItem, InventoryError> {
        if owner_sku_id.is_some() && caller != Caller::Catalog {
            return Err(InventoryError::OwnerReserved);
        }
        let id = match id {
            Some(id) => {
                validate_item_id("id", &id).map_err(InventoryError::invalid)?;
                id
            }
            None => generate_id("item"),
        };
        if let Some(owner) = &owner_sku_id {
            validate_item_id("ownerSkuId", owner).map_err(InventoryError::invalid)?;
        }
        let time = self.clock.now();
        let item = InventoryItem {
            id,
            manufacturer_id: fields.manufacturer_id,
            part_number: fields.part_number,
            eccn: fields.eccn,
            hs_code: fields.hs_code,
            country_of_origin: fields.country_of_origin,
            allow_oversell: fields.allow_oversell.unwrap_or(false),
            owner_sku_id,
            live_mode: self.live_mode,
            created_time: time,
            updated_time: time,
        };
        self.validate_item(&item)?;
        retry_lost_insert(|| {
            self.db.write(|txn| {
                let item = item.clone();
                Box::pin(async move {
                    match inventory_item::Entity::find_by_id(item.id.clone()).one(txn).await? {
                        Some(existing) if same_attributes(&existing, &item) => Ok(existing),
                        Some(existing) => Err(InventoryError::ItemExists(existing.id)),
                        None => {
                            inventory_item::Entity::insert(item.clone().into_active_model())
                                .exec_without_returning(txn)
                                .await?;
                            Ok(item)
                        }
                    }
                })
            })
        })
        .await
    }

    /// Changes the named attributes of an item; an item owned by a SKU changes only when the
    /// Catalog asks.
    pub async fn update_item(
        &self,
        id: &str,
        fields: ItemFields,
        mask: Vec<ItemField>,
        caller: Caller,
    ) -> Result<InventoryItem, InventoryError> {
        validate_item_id("id", id).map_err(InventoryError::invalid)?;
        let this = self.clone();
        self.db
            .write(|txn| {
                let (this, id, fields, mask) = (this.clone(), id.to_owned(), fields.clone(), mask.clone());
                Box::pin(async move {
                    let mut item = find_item(txn, &id, RowLock::Exclusive).await?;
                    guard_owner(&item, caller)?;
                    fields.apply_to(&mut item, &mask);
                    this.validate_item(&item)?;
                    item.updated_time = this.clock.now().max(item.created_time);
                    let mut active = item.clone().into_active_model().reset_all();
                    active.created_time = sea_orm::ActiveValue::NotSet;
                    active.update(txn).await?;
                    Ok(item)
                })
            })
            .await
    }

    /// Returns an item.
    pub async fn get_item(&self, id: &str) -> Result<InventoryItem, InventoryError> {
        validate_item_id("id", id).map_err(InventoryError::invalid)?;
        find_item(self.db.connection(), id, RowLock::None).await
    }

    /// Lists items, oldest first.
    pub async fn list_items(
        &self,
        filter: &ItemFilter,
        page_size: u64,
        page_token: &str,
    ) -> Result<Page<InventoryItem>, InventoryError> {
        // The count first: a longer list is refused before any of its ids is looked at.
        if filter.ids.len() > MAX_LISTED_IDS {
            let message = format!("At most {MAX_LISTED_IDS} ids may be given.");
            return Err(InventoryError::invalid(FieldViolation::invalid("ids", message)));
        }
        let mut violations = Violations::new();
        violations.extend(filter.ids.iter().filter_map(|id| validate_item_id("ids", id).err()));
        for (parameter, value) in [("manufacturerId", &filter.manufacturer_id), ("partNumber", &filter.part_number)] {
            if let Some(value) = value {
                violations.extend(validate_text(parameter, value, MAX_SHORT_TEXT).err());
            }
        }
        check(violations)?;
        let cursor = Cursor::decode(page_token).map_err(InventoryError::invalid)?;
        let mut condition = Condition::all()
            .add(filter.created.condition(inventory_item::Column::CreatedTime))
            .add(filter.updated.condition(inventory_item::Column::UpdatedTime));
        if !filter.ids.is_empty() {
            condition = condition.add(inventory_item::Column::Id.is_in(filter.ids.clone()));
        }
        if let Some(manufacturer_id) = &filter.manufacturer_id {
            condition = condition.add(inventory_item::Column::ManufacturerId.eq(manufacturer_id.clone()));
        }
        if let Some(part_number) = &filter.part_number {
            condition = condition.add(inventory_item::Column::PartNumber.eq(part_number.clone()));
        }
        if let Some(cursor) = &cursor {
            condition =
                condition.add(cursor.condition(inventory_item::Column::CreatedTime, inventory_item::Column::Id));
        }
        let rows = inventory_item::Entity::find()
            .filter(condition)
            .order_by_asc(inventory_item::Column::CreatedTime)
            .order_by_asc(inventory_item::Column::Id)
            .limit(page_size + 1)
            .all(self.db.connection())
            .await?;
        Ok(Page::from_rows(rows, page_size, |item| Cursor::after(item.created_time, &item.id)))
    }

    /// Deletes an item and its stock levels; refused while the item has open holds, and for an item
    /// owned by a SKU unless the Catalog asks.
    pub async fn delete_item(&self, id: &str, caller: Caller) -> Result<(), InventoryError> {
        validate_item_id("id", id).map_err(InventoryError::invalid)?;
        let time = self.clock.now();
        self.db
            .write(|txn| {
                let id = id.to_owned();
                Box::pin(async move {
                    let item = find_item(txn, &id, RowLock::Exclusive).await?;
                    guard_owner(&item, caller)?;
                    if open_holds_on_item(txn, &id).await? > 0 {
                        return Err(InventoryError::ItemHasOpenHolds(id));
                    }
                    // The stock goes with the item, and the ledger says so.
                    let levels = stock_level::Entity::find()
                        .filter(stock_level::Column::InventoryItemId.eq(id.clone()))
                        .lock_exclusive()
                        .all(txn)
                        .await?;
                    for level in levels.iter().filter(|level| level.on_hand != 0) {
                        let movement = stock_movement::Model {
                            id: generate_id("mov"),
                            inventory_item_id: id.clone(),
                            warehouse_id: level.warehouse_id.clone(),
                            kind: StockChange::Adjust.as_str().to_owned(),
                            requested_quantity: -level.on_hand,
                            delta: -level.on_hand,
                            on_hand_after: 0,
                            reason: "inventory item deleted".into(),
                            idempotency_key: None,
                            hold_id: None,
                            created_time: time,
                        };
                        stock_movement::Entity::insert(movement.into_active_model())
                            .exec_without_returning(txn)
                            .await?;
                    }
                    stock_level::Entity::delete_many()
                        .filter(stock_level::Column::InventoryItemId.eq(id.clone()))
                        .exec(txn)
                        .await?;
                    inventory_item::Entity::delete_by_id(id).exec(txn).await?;
                    Ok(())
                })
            })
            .await
    }
}

/// Whether two items carry the same caller-set attributes.
fn same_attributes(a: &InventoryItem, b: &InventoryItem) -> bool {
    (&a.manufacturer_id, &a.part_number, &a.eccn, &a.hs_code, &a.country_of_origin, a.allow_oversell, &a.owner_sku_id)
        == (
            &b.manufacturer_id,
            &b.part_number,
            &b.eccn,
            &b.hs_code,
            &b.country_of_origin,
            b.allow_oversell,
            &b.owner_sku_id,
        )
}

/// An item a SKU owns changes only through the Catalog; and the Catalog changes only the items its
/// SKUs own (an item a client made with the same id is not the Catalog's to touch).
fn guard_owner(item: &InventoryItem, caller: Caller) -> Result<(), InventoryError> {
    match (&item.owner_sku_id, caller) {
        (Some(sku), Caller::Client | Caller::Reservation) => {
            Err(InventoryError::OwnedBySku { item: item.id.clone(), sku: sku.clone() })
        }
        (Some(sku), Caller::Catalog) if *sku == item.id => Ok(()),
        (_, Caller::Catalog) => Err(InventoryError::NotOwnedBySku(item.id.clone())),
        (None, Caller::Client | Caller::Reservation) => Ok(()),
    }
}

async fn open_holds_on_item(db: &impl ConnectionTrait, item: &str) -> Result<u64, DbErr> {
    let holds_of_item = Query::select()
        .column(hold_allocation::Column::HoldId)
        .from(hold_allocation::Entity)
        .and_where(hold_allocation::Column::InventoryItemId.eq(item))
        .to_owned();
    hold::Entity::find()
        .filter(hold::Column::Id.in_subquery(holds_of_item))
        .filter(hold::Column::State.eq(HoldState::Held))
        .count(db)
        .await
}
