//! Queries and row locks on the Catalog's tables: SKUs, the manufacturer-part registry and the
//! saga rows. More than one operation needs each of them, so they live here rather than in a
//! subject's file. Functions take any connection, so callers decide what runs in one transaction.

use std::collections::BTreeMap;

use fulfillment_reference::generate_id;
use fulfillment_storage::paging::Cursor;
use sea_orm::sea_query::{LockBehavior, LockType, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
};

use crate::domain::{MANAGED_FULFILLMENT, Sku, SkuAttributes, SkuFilter};
use crate::entity::{manufacturer_part, sku, sku_saga};

/// A registered manufacturer id / part number pair.
pub type ManufacturerPart = manufacturer_part::Model;

/// Reads a SKU; `for_update` locks the row until the transaction ends (PostgreSQL; SQLite's
/// writers already take turns).
pub(crate) async fn find_sku(db: &impl ConnectionTrait, id: &str, for_update: bool) -> Result<Option<Sku>, DbErr> {
    let mut query = sku::Entity::find_by_id(id.to_owned());
    if for_update {
        query = query.lock_exclusive();
    }
    query.one(db).await?.map(from_model).transpose()
}

/// Inserts a new SKU; a taken id is a unique violation.
pub(crate) async fn insert_sku(db: &impl ConnectionTrait, sku: &Sku) -> Result<(), DbErr> {
    sku::Entity::insert(to_model(sku)?.into_active_model()).exec_without_returning(db).await.map(drop)
}

/// Overwrites a stored SKU.
pub(crate) async fn update_sku(db: &impl ConnectionTrait, sku: &Sku) -> Result<(), DbErr> {
    to_model(sku)?.into_active_model().reset_all().update(db).await.map(drop)
}

/// Deletes a SKU, telling whether it existed.
pub(crate) async fn delete_sku(db: &impl ConnectionTrait, id: &str) -> Result<bool, DbErr> {
    Ok(sku::Entity::delete_by_id(id.to_owned()).exec(db).await?.rows_affected > 0)
}

/// Up to `limit` SKUs after `cursor` matching `filter`, oldest first.
pub(crate) async fn list_skus(
    db: &impl ConnectionTrait,
    filter: &SkuFilter,
    cursor: Option<&Cursor>,
    limit: u64,
) -> Result<Vec<Sku>, DbErr> {
    let mut condition = Condition::all()
        .add(filter.created.condition(sku::Column::CreatedTime))
        .add(filter.updated.condition(sku::Column::UpdatedTime));
    if !filter.ids.is_empty() {
        condition = condition.add(sku::Column::Id.is_in(filter.ids.clone()));
    }
    let equal_filters = [
        (sku::Column::Eccn, &filter.eccn),
        (sku::Column::PartNumber, &filter.part_number),
        (sku::Column::HsCode, &filter.hs_code),
        (sku::Column::TaxCode, &filter.tax_code),
        (sku::Column::SkuGroupId, &filter.sku_group_id),
    ];
    for (column, value) in equal_filters {
        if let Some(value) = value {
            condition = condition.add(column.eq(value.clone()));
        }
    }
    if let Some(cursor) = cursor {
        condition = condition.add(cursor.condition(sku::Column::CreatedTime, sku::Column::Id));
    }
    let rows = sku::Entity::find()
        .filter(condition)
        .order_by_asc(sku::Column::CreatedTime)
        .order_by_asc(sku::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    rows.into_iter().map(from_model).collect()
}

/// How a read locks the rows it finds until the transaction ends (on PostgreSQL; SQLite's writers
/// already take turns, and sea-query leaves the clause out there).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RowLock {
    /// Others may read and share-lock, not change or delete.
    Shared,
    /// Nobody else may lock, change or delete.
    Exclusive,
}

/// Whether the registry holds the pair, locking it as asked.
pub(crate) async fn manufacturer_part_exists(
    db: &impl ConnectionTrait,
    manufacturer_id: &str,
    part_number: &str,
    lock: RowLock,
) -> Result<bool, DbErr> {
    let query = manufacturer_part::Entity::find_by_id((manufacturer_id.to_owned(), part_number.to_owned()));
    let query = match lock {
        RowLock::Shared => query.lock_shared(),
        RowLock::Exclusive => query.lock_exclusive(),
    };
    Ok(query.one(db).await?.is_some())
}

/// The manufacturers that registered `part_number`, at most `limit` of them.
pub(crate) async fn manufacturers_of_part(
    db: &impl ConnectionTrait,
    part_number: &str,
    limit: u64,
) -> Result<Vec<String>, DbErr> {
    let rows = manufacturer_part::Entity::find()
        .filter(manufacturer_part::Column::PartNumber.eq(part_number))
        .order_by_asc(manufacturer_part::Column::ManufacturerId)
        .limit(limit)
        .lock_shared()
        .all(db)
        .await?;
    Ok(rows.into_iter().map(|row| row.manufacturer_id).collect())
}

/// Registers a pair unless it is already there, and returns the stored row.
pub(crate) async fn register_manufacturer_part(
    db: &impl ConnectionTrait,
    part: ManufacturerPart,
) -> Result<ManufacturerPart, DbErr> {
    let key = (part.manufacturer_id.clone(), part.part_number.clone());
    manufacturer_part::Entity::insert(part.into_active_model())
        .on_conflict(
            OnConflict::columns([manufacturer_part::Column::ManufacturerId, manufacturer_part::Column::PartNumber])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    manufacturer_part::Entity::find_by_id(key)
        .one(db)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("manufacturer part vanished after insert".into()))
}

/// Removes a pair, telling whether it existed.
pub(crate) async fn delete_manufacturer_part(
    db: &impl ConnectionTrait,
    manufacturer_id: &str,
    part_number: &str,
) -> Result<bool, DbErr> {
    let result =
        manufacturer_part::Entity::delete_by_id((manufacturer_id.to_owned(), part_number.to_owned())).exec(db).await?;
    Ok(result.rows_affected > 0)
}

/// A managed SKU that relies on the pair, if any.
pub(crate) async fn managed_sku_using_part(
    db: &impl ConnectionTrait,
    manufacturer_id: &str,
    part_number: &str,
) -> Result<Option<String>, DbErr> {
    let row = sku::Entity::find()
        .filter(sku::Column::ManagedFulfillment.eq(MANAGED_FULFILLMENT))
        .filter(sku::Column::PartNumber.eq(part_number))
        .filter(sku::Column::ManufacturerId.eq(manufacturer_id))
        .one(db)
        .await?;
    Ok(row.map(|row| row.id))
}

/// Up to `limit` registered pairs after `cursor`, optionally of one manufacturer or part number.
pub(crate) async fn list_manufacturer_parts(
    db: &impl ConnectionTrait,
    manufacturer_id: Option<&str>,
    part_number: Option<&str>,
    cursor: Option<&Cursor>,
    limit: u64,
) -> Result<Vec<ManufacturerPart>, DbErr> {
    let mut query = manufacturer_part::Entity::find();
    if let Some(manufacturer_id) = manufacturer_id {
        query = query.filter(manufacturer_part::Column::ManufacturerId.eq(manufacturer_id));
    }
    if let Some(part_number) = part_number {
        query = query.filter(manufacturer_part::Column::PartNumber.eq(part_number));
    }
    if let Some(cursor) = cursor {
        // The cursor's id is the pair's key, written manufacturer '\n' part so that it sorts by both.
        let (after_manufacturer, after_part) = cursor.id.split_once('\n').unwrap_or((cursor.id.as_str(), ""));
        query = query.filter(
            Condition::any().add(manufacturer_part::Column::ManufacturerId.gt(after_manufacturer)).add(
                Condition::all()
                    .add(manufacturer_part::Column::ManufacturerId.eq(after_manufacturer))
                    .add(manufacturer_part::Column::PartNumber.gt(after_part)),
            ),
        );
    }
    query
        .order_by_asc(manufacturer_part::Column::ManufacturerId)
        .order_by_asc(manufacturer_part::Column::PartNumber)
        .limit(limit)
        .all(db)
        .await
}

/// An open saga as its row records it (docs/architecture.md, "The saga"): the SKU before and
/// after the change, and the claim of the worker driving it.
#[derive(Clone, Debug)]
pub(crate) struct Saga {
    pub(crate) sku_id: String,
    pub(crate) previous: Option<Sku>,
    pub(crate) desired: Option<Sku>,
    claim_token: String,
}

impl Saga {
    fn from_row(row: sku_saga::Model) -> Result<Self, DbErr> {
        Ok(Self {
            previous: from_json(row.previous.as_deref())?,
            desired: from_json(row.desired.as_deref())?,
            sku_id: row.sku_id,
            claim_token: row.claim_token,
        })
    }
}

/// Whether a saga is open for the SKU, locking its row until the transaction ends.
pub(crate) async fn saga_is_open(db: &impl ConnectionTrait, sku_id: &str) -> Result<bool, DbErr> {
    Ok(sku_saga::Entity::find_by_id(sku_id.to_owned()).lock_exclusive().one(db).await?.is_some())
}

/// Records a saga for the SKU, claimed for `lease` by a fresh token.
pub(crate) async fn insert_saga(
    db: &impl ConnectionTrait,
    sku_id: String,
    previous: Option<&Sku>,
    desired: Option<&Sku>,
    lease: chrono::Duration,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Saga, DbErr> {
    let row = sku_saga::Model {
        sku_id,
        previous: to_json(previous)?,
        desired: to_json(desired)?,
        claim_token: generate_id("claim"),
        claimed_until: now + lease,
        created_time: now,
    };
    sku_saga::Entity::insert(row.clone().into_active_model()).exec_without_returning(db).await?;
    Saga::from_row(row)
}

/// Claims for `lease`, under a fresh token, one saga whose claim lapsed, if any, skipping those
/// other replicas hold.
pub(crate) async fn claim_lapsed_saga(
    db: &impl ConnectionTrait,
    lease: chrono::Duration,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Option<Saga>, DbErr> {
    let row = sku_saga::Entity::find()
        .filter(sku_saga::Column::ClaimedUntil.lte(now))
        .order_by_asc(sku_saga::Column::ClaimedUntil)
        .limit(1)
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .one(db)
        .await?;
    let Some(mut row) = row else { return Ok(None) };
    row.claim_token = generate_id("claim");
    row.claimed_until = now + lease;
    row.clone().into_active_model().reset_all().update(db).await?;
    Saga::from_row(row).map(Some)
}

/// Deletes the saga row if this worker still holds its claim; tells whether it did.
pub(crate) async fn close_saga(db: &impl ConnectionTrait, saga: &Saga) -> Result<bool, DbErr> {
    let deleted = sku_saga::Entity::delete_many()
        .filter(sku_saga::Column::SkuId.eq(saga.sku_id.clone()))
        .filter(sku_saga::Column::ClaimToken.eq(saga.claim_token.clone()))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected > 0)
}

/// The SKUs whose sagas are open: as many as calls in flight and crashed drivers left, never the
/// whole catalog.
pub(crate) async fn open_saga_ids(db: &impl ConnectionTrait) -> Result<Vec<String>, DbErr> {
    sku_saga::Entity::find().select_only().column(sku_saga::Column::SkuId).into_tuple().all(db).await
}

/// How many sagas are open.
pub(crate) async fn count_sagas(db: &impl ConnectionTrait) -> Result<u64, DbErr> {
    sku_saga::Entity::find().count(db).await
}

fn to_json(sku: Option<&Sku>) -> Result<Option<String>, DbErr> {
    sku.map(|s| serde_json::to_string(s).map_err(|e| DbErr::Json(e.to_string()))).transpose()
}

fn from_json(json: Option<&str>) -> Result<Option<Sku>, DbErr> {
    json.map(|j| serde_json::from_str(j).map_err(|e| DbErr::Json(e.to_string()))).transpose()
}

fn to_model(sku: &Sku) -> Result<sku::Model, DbErr> {
    let a = &sku.attributes;
    let required = |value: &Option<String>, name: &str| {
        value.clone().ok_or_else(|| DbErr::Custom(format!("SKU '{}' has no {name}", sku.id)))
    };
    let metadata =
        serde_json::to_string(&a.metadata.clone().unwrap_or_default()).map_err(|e| DbErr::Json(e.to_string()))?;
    Ok(sku::Model {
        id: sku.id.clone(),
        name: required(&a.name, "name")?,
        description: a.description.clone(),
        eccn: required(&a.eccn, "eccn")?,
        tax_code: required(&a.tax_code, "tax code")?,
        country_of_origin: required(&a.country_of_origin, "country of origin")?,
        hs_code: a.hs_code.clone(),
        sku_group_id: a.sku_group_id.clone(),
        manufacturer_id: a.manufacturer_id.clone(),
        part_number: a.part_number.clone(),
        image: a.image.clone(),
        url: a.url.clone(),
        weight: a.weight,
        weight_unit: a.weight_unit.clone(),
        allow_oversell: a.allow_oversell,
        fulfill: a.fulfill.unwrap_or(false),
        managed_fulfillment: a.managed_fulfillment.clone(),
        item_breadcrumb: a.item_breadcrumb.clone(),
        metadata,
        physical: sku.physical,
        live_mode: sku.live_mode,
        created_time: sku.created_time,
        updated_time: sku.updated_time,
    })
}

fn from_model(row: sku::Model) -> Result<Sku, DbErr> {
    let metadata: BTreeMap<String, String> =
        serde_json::from_str(&row.metadata).map_err(|e| DbErr::Json(format!("SKU '{}' metadata: {e}", row.id)))?;
    Ok(Sku {
        attributes: SkuAttributes {
            name: Some(row.name),
            description: row.description,
            eccn: Some(row.eccn),
            tax_code: Some(row.tax_code),
            country_of_origin: Some(row.country_of_origin),
            hs_code: row.hs_code,
            sku_group_id: row.sku_group_id,
            manufacturer_id: row.manufacturer_id,
            part_number: row.part_number,
            image: row.image,
            url: row.url,
            weight: row.weight,
            weight_unit: row.weight_unit,
            allow_oversell: row.allow_oversell,
            fulfill: Some(row.fulfill),
            managed_fulfillment: row.managed_fulfillment,
            item_breadcrumb: row.item_breadcrumb,
            metadata: (!metadata.is_empty()).then_some(metadata),
        },
        id: row.id,
        physical: row.physical,
        live_mode: row.live_mode,
        created_time: row.created_time,
        updated_time: row.updated_time,
    })
}
