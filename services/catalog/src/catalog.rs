//! The Catalog's operations, in domain types: what the gRPC adapter calls.

use std::sync::Arc;
use std::time::Duration;

use fulfillment_errors::{FieldViolation, Violations};
use fulfillment_reference::{MAX_SHORT_TEXT, ReferenceData, generate_id, validate_sku_id, validate_text};
use fulfillment_storage::paging::{Cursor, Page, now};
use fulfillment_storage::{Database, retry_lost_insert};
use sea_orm::ConnectionTrait;

use crate::entity::manufacturer_part;
use crate::error::CatalogError;
use crate::inventory_items::InventoryItems;
use crate::metrics::CatalogMetrics;
use crate::repository::{self, RowLock, SkuFilter};
use crate::saga::Saga;
use crate::sku::{Sku, SkuAttributes, SkuChanges};
use crate::validation::validate;

/// A registered manufacturer id / part number pair.
pub type ManufacturerPart = manufacturer_part::Model;

/// The Catalog: SKUs and the manufacturer-parts registry over one database.
///
/// Cloning is cheap: transaction bodies own a clone, since they may run more than once.
#[derive(Clone, Debug)]
pub struct Catalog {
    pub(crate) db: Database,
    reference: Arc<ReferenceData>,
    pub(crate) items: InventoryItems,
    pub(crate) saga_lease: Duration,
    pub(crate) metrics: CatalogMetrics,
    live_mode: bool,
}

impl Catalog {
    /// A Catalog over a migrated database, keeping managed SKUs' items in the Inventory behind
    /// `items`; `saga_lease` is how long a saga's driver owns it before recovery may take over.
    pub fn new(
        db: Database,
        reference: ReferenceData,
        items: InventoryItems,
        saga_lease: Duration,
        metrics: CatalogMetrics,
    ) -> Self {
        Self { db, reference: Arc::new(reference), items, saga_lease, metrics, live_mode: true }
    }

    /// The same Catalog as the store of test-mode SKUs: what it makes says `live_mode` false.
    pub fn for_test_mode(mut self) -> Self {
        self.live_mode = false;
        self.metrics = self.metrics.in_mode(false);
        self
    }

    /// Creates a SKU, generating its id when none is given. Creating it again with the same
    /// attributes answers the stored SKU, so a client may retry; other attributes are ALREADY_EXISTS.
    /// A managed SKU's inventory item is created with it, or the SKU is not kept.
    pub async fn create_sku(&self, id: Option<String>, attributes: SkuAttributes) -> Result<Sku, CatalogError> {
        let id = match id {
            Some(id) => {
                validate_sku_id(&id).map_err(CatalogError::invalid)?;
                id
            }
            None => generate_id("sku"),
        };
        let sku = self.prepare_new(id, attributes)?;
        let (sku, saga) = retry_lost_insert(|| {
            self.db.write(|txn| {
                let (this, sku) = (self.clone(), sku.clone());
                Box::pin(async move {
                    let sku = this.check_managed_part(txn, sku).await?;
                    match repository::find_sku(txn, &sku.id, true).await? {
                        Some(existing) if existing.attributes == sku.attributes => {
                            let saga = this.open_saga(txn, Some(&existing), Some(&existing)).await?;
                            Ok((existing, saga))
                        }
                        Some(existing) => Err(CatalogError::SkuExists(existing.id)),
                        None => {
                            repository::insert_sku(txn, &sku).await?;
                            let saga = this.open_saga(txn, None, Some(&sku)).await?;
                            Ok((sku, saga))
                        }
                    }
                })
            })
        })
        .await?;
        self.settle(saga).await?;
        Ok(sku)
    }

    /// Creates the SKU `id` or, if it exists, applies the given attributes to it; says which with
    /// `true` for created. The fields required on create are required either way.
    pub async fn upsert_sku(&self, id: String, attributes: SkuAttributes) -> Result<(Sku, bool), CatalogError> {
        validate_sku_id(&id).map_err(CatalogError::invalid)?;
        let new_sku = self.prepare_new(id, attributes.clone())?;
        let changes = SkuChanges::set_present(attributes);
        let (sku, created, saga) = retry_lost_insert(|| {
            self.db.write(|txn| {
                let (this, new_sku, changes) = (self.clone(), new_sku.clone(), changes.clone());
                Box::pin(async move {
                    match repository::find_sku(txn, &new_sku.id, true).await? {
                        Some(existing) => {
                            let (sku, saga) = this.apply_changes(txn, existing, &changes).await?;
                            Ok::<_, CatalogError>((sku, false, saga))
                        }
                        None => {
                            let sku = this.check_managed_part(txn, new_sku).await?;
                            repository::insert_sku(txn, &sku).await?;
                            let saga = this.open_saga(txn, None, Some(&sku)).await?;
                            Ok((sku, true, saga))
                        }
                    }
                })
            })
        })
        .await?;
        self.settle(saga).await?;
        Ok((sku, created))
    }

    /// Applies `changes` to the SKU `id`; nothing changes if the result breaks a rule.
    pub async fn update_sku(&self, id: &str, changes: SkuChanges) -> Result<Sku, CatalogError> {
        validate_sku_id(id).map_err(CatalogError::invalid)?;
        let (sku, saga) = self
            .db
            .write(|txn| {
                let (this, id, changes) = (self.clone(), id.to_owned(), changes.clone());
                Box::pin(async move {
                    let existing = repository::find_sku(txn, &id, true)
                        .await?
                        .ok_or_else(|| CatalogError::SkuNotFound(id.clone()))?;
                    this.apply_changes(txn, existing, &changes).await
                })
            })
            .await?;
        self.settle(saga).await?;
        Ok(sku)
    }

    /// Drives the saga a write opened, if any.
    async fn settle(&self, saga: Option<Saga>) -> Result<(), CatalogError> {
        match saga {
            Some(saga) => self.drive(saga).await,
            None => Ok(()),
        }
    }

    /// Returns the SKU `id`.
    pub async fn get_sku(&self, id: &str) -> Result<Sku, CatalogError> {
        validate_sku_id(id).map_err(CatalogError::invalid)?;
        repository::find_sku(self.db.connection(), id, false)
            .await?
            .ok_or_else(|| CatalogError::SkuNotFound(id.to_owned()))
    }

    /// Lists SKUs matching `filter`, oldest first, `page_size` at a time after `page_token`.
    pub async fn list_skus(
        &self,
        filter: &SkuFilter,
        page_size: u64,
        page_token: &str,
    ) -> Result<Page<Sku>, CatalogError> {
        filter.validate().map_err(CatalogError::InvalidRequest)?;
        let cursor = Cursor::decode(page_token).map_err(CatalogError::invalid)?;
        let rows = repository::list_skus(self.db.connection(), filter, cursor.as_ref(), page_size + 1).await?;
        Ok(Page::from_rows(rows, page_size, |sku| Cursor::after(sku.created_time, &sku.id)))
    }

    /// Deletes the SKU `id`; a managed SKU's item goes first, and if the Inventory refuses (the
    /// item has open holds) nothing changes.
    pub async fn delete_sku(&self, id: &str) -> Result<(), CatalogError> {
        validate_sku_id(id).map_err(CatalogError::invalid)?;
        let saga = self
            .db
            .write(|txn| {
                let (this, id) = (self.clone(), id.to_owned());
                Box::pin(async move {
                    let sku = repository::find_sku(txn, &id, true)
                        .await?
                        .ok_or_else(|| CatalogError::SkuNotFound(id.clone()))?;
                    let saga = this.open_saga(txn, Some(&sku), None).await?;
                    if saga.is_none() {
                        repository::delete_sku(txn, &id).await?;
                    }
                    Ok::<_, CatalogError>(saga)
                })
            })
            .await?;
        self.settle(saga).await
    }

    /// Registers a manufacturer part; registering it again returns the first registration.
    pub async fn register_manufacturer_part(
        &self,
        manufacturer_id: &str,
        part_number: &str,
    ) -> Result<ManufacturerPart, CatalogError> {
        validate_part_key(manufacturer_id, part_number)?;
        let part = ManufacturerPart {
            manufacturer_id: manufacturer_id.to_owned(),
            part_number: part_number.to_owned(),
            created_time: now(),
        };
        self.db
            .write(|txn| {
                let part = part.clone();
                Box::pin(
                    async move { repository::register_manufacturer_part(txn, part).await.map_err(CatalogError::from) },
                )
            })
            .await
    }

    /// Lists registered parts, optionally of one manufacturer or part number.
    pub async fn list_manufacturer_parts(
        &self,
        manufacturer_id: Option<&str>,
        part_number: Option<&str>,
        page_size: u64,
        page_token: &str,
    ) -> Result<Page<ManufacturerPart>, CatalogError> {
        let filters = [("manufacturerId", manufacturer_id), ("partNumber", part_number)];
        let violations: Vec<_> = filters
            .into_iter()
            .filter_map(|(parameter, value)| validate_text(parameter, value?, MAX_SHORT_TEXT).err())
            .collect();
        if !violations.is_empty() {
            return Err(CatalogError::InvalidRequest(violations.into()));
        }
        let cursor = Cursor::decode(page_token).map_err(CatalogError::invalid)?;
        let rows = repository::list_manufacturer_parts(
            self.db.connection(),
            manufacturer_id,
            part_number,
            cursor.as_ref(),
            page_size + 1,
        )
        .await?;
        Ok(Page::from_rows(rows, page_size, |part| Cursor {
            created_micros: 0,
            id: format!("{}\n{}", part.manufacturer_id, part.part_number),
        }))
    }

    /// Removes a registered part that no managed SKU relies on.
    pub async fn delete_manufacturer_part(&self, manufacturer_id: &str, part_number: &str) -> Result<(), CatalogError> {
        validate_part_key(manufacturer_id, part_number)?;
        self.db
            .write(|txn| {
                let (manufacturer_id, part_number) = (manufacturer_id.to_owned(), part_number.to_owned());
                Box::pin(async move {
                    // Lock the pair first: a managed SKU being created holds it shared until it
                    // commits, so the usage check below then sees that SKU.
                    let exists =
                        repository::manufacturer_part_exists(txn, &manufacturer_id, &part_number, RowLock::Exclusive)
                            .await?;
                    if !exists {
                        return Err(CatalogError::ManufacturerPartNotFound { manufacturer_id, part_number });
                    }
                    if let Some(sku_id) =
                        repository::managed_sku_using_part(txn, &manufacturer_id, &part_number).await?
                    {
                        return Err(CatalogError::ManufacturerPartInUse { manufacturer_id, part_number, sku_id });
                    }
                    if repository::delete_manufacturer_part(txn, &manufacturer_id, &part_number).await? {
                        Ok(())
                    } else {
                        Err(CatalogError::ManufacturerPartNotFound { manufacturer_id, part_number })
                    }
                })
            })
            .await
    }

    /// Validates a new SKU's attributes and stamps it; the registry check comes later, inside the
    /// transaction that stores it.
    fn prepare_new(&self, id: String, mut attributes: SkuAttributes) -> Result<Sku, CatalogError> {
        let validated = validate(&mut attributes, &self.reference).map_err(CatalogError::InvalidRequest)?;
        attributes.fulfill.get_or_insert(false);
        let time = now();
        Ok(Sku {
            id,
            attributes,
            physical: validated.physical,
            live_mode: self.live_mode,
            created_time: time,
            updated_time: time,
        })
    }

    async fn apply_changes(
        &self,
        txn: &impl ConnectionTrait,
        existing: Sku,
        changes: &SkuChanges,
    ) -> Result<(Sku, Option<Saga>), CatalogError> {
        let mut sku = existing.clone();
        changes.apply_to(&mut sku.attributes);
        let validated = validate(&mut sku.attributes, &self.reference).map_err(CatalogError::InvalidRequest)?;
        sku.physical = validated.physical;
        sku.updated_time = now().max(sku.created_time);
        let sku = self.check_managed_part(txn, sku).await?;
        repository::update_sku(txn, &sku).await?;
        let saga = self.open_saga(txn, Some(&existing), Some(&sku)).await?;
        Ok((sku, saga))
    }

    /// For a managed SKU, checks that its manufacturer part is registered. A SKU that gives only a
    /// part number takes the manufacturer id from the registry when exactly one manufacturer
    /// registered that part, as the document's example pair shows.
    async fn check_managed_part(&self, txn: &impl ConnectionTrait, mut sku: Sku) -> Result<Sku, CatalogError> {
        let Some(part) = sku.attributes.managed_part() else {
            return Ok(sku);
        };
        let not_registered = || CatalogError::ManufacturerPartNotRegistered {
            manufacturer_id: part.manufacturer_id.clone(),
            part_number: part.part_number.clone(),
        };
        match &part.manufacturer_id {
            Some(manufacturer_id) => {
                if !repository::manufacturer_part_exists(txn, manufacturer_id, &part.part_number, RowLock::Shared)
                    .await?
                {
                    return Err(not_registered());
                }
            }
            None => {
                let manufacturers = repository::manufacturers_of_part(txn, &part.part_number, 2).await?;
                match manufacturers.as_slice() {
                    [only] => sku.attributes.manufacturer_id = Some(only.clone()),
                    _ => return Err(not_registered()),
                }
            }
        }
        Ok(sku)
    }
}

fn validate_part_key(manufacturer_id: &str, part_number: &str) -> Result<(), CatalogError> {
    let mut violations = Violations::new();
    for (parameter, value) in [("manufacturerId", manufacturer_id), ("partNumber", part_number)] {
        if value.is_empty() {
            violations.push(FieldViolation::missing(parameter));
        } else if value.len() > 255 || value.chars().any(char::is_control) {
            violations.push(FieldViolation::not_valid(parameter, value, parameter));
        }
    }
    if violations.is_empty() { Ok(()) } else { Err(CatalogError::InvalidRequest(violations)) }
}
