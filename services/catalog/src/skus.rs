//! The operations on SKUs, in domain types: what the gRPC adapter calls. A write that touches a
//! managed SKU's inventory item opens a saga in its transaction and settles it after the commit
//! (docs/architecture.md, "The saga").

use fulfillment_reference::{generate_id, validate_sku_id};
use fulfillment_storage::paging::{Cursor, Page};
use fulfillment_storage::retry_lost_insert;
use sea_orm::ConnectionTrait;

use crate::catalog::Catalog;
use crate::domain::{Sku, SkuAttributes, SkuChanges, SkuFilter, validate};
use crate::error::CatalogError;
use crate::store::{self, RowLock, Saga};

impl Catalog {
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
                    match store::find_sku(txn, &sku.id, true).await? {
                        Some(existing) if existing.attributes == sku.attributes => {
                            let saga = this.sagas.open_saga(txn, Some(&existing), Some(&existing)).await?;
                            Ok((existing, saga))
                        }
                        Some(existing) => Err(CatalogError::SkuExists(existing.id)),
                        None => {
                            store::insert_sku(txn, &sku).await?;
                            let saga = this.sagas.open_saga(txn, None, Some(&sku)).await?;
                            Ok((sku, saga))
                        }
                    }
                })
            })
        })
        .await?;
        self.sagas.settle(saga).await?;
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
                    match store::find_sku(txn, &new_sku.id, true).await? {
                        Some(existing) => {
                            let (sku, saga) = this.apply_changes(txn, existing, &changes).await?;
                            Ok::<_, CatalogError>((sku, false, saga))
                        }
                        None => {
                            let sku = this.check_managed_part(txn, new_sku).await?;
                            store::insert_sku(txn, &sku).await?;
                            let saga = this.sagas.open_saga(txn, None, Some(&sku)).await?;
                            Ok((sku, true, saga))
                        }
                    }
                })
            })
        })
        .await?;
        self.sagas.settle(saga).await?;
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
                    let existing =
                        store::find_sku(txn, &id, true).await?.ok_or_else(|| CatalogError::SkuNotFound(id.clone()))?;
                    this.apply_changes(txn, existing, &changes).await
                })
            })
            .await?;
        self.sagas.settle(saga).await?;
        Ok(sku)
    }

    /// Returns the SKU `id`.
    pub async fn get_sku(&self, id: &str) -> Result<Sku, CatalogError> {
        validate_sku_id(id).map_err(CatalogError::invalid)?;
        store::find_sku(self.db.connection(), id, false).await?.ok_or_else(|| CatalogError::SkuNotFound(id.to_owned()))
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
        let rows = store::list_skus(self.db.connection(), filter, cursor.as_ref(), page_size + 1).await?;
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
                    let sku =
                        store::find_sku(txn, &id, true).await?.ok_or_else(|| CatalogError::SkuNotFound(id.clone()))?;
                    let saga = this.sagas.open_saga(txn, Some(&sku), None).await?;
                    if saga.is_none() {
                        store::delete_sku(txn, &id).await?;
                    }
                    Ok::<_, CatalogError>(saga)
                })
            })
            .await?;
        self.sagas.settle(saga).await
    }

    /// Validates a new SKU's attributes and stamps it; the registry check comes later, inside the
    /// transaction that stores it.
    fn prepare_new(&self, id: String, mut attributes: SkuAttributes) -> Result<Sku, CatalogError> {
        let validated = validate(&mut attributes, &self.reference).map_err(CatalogError::InvalidRequest)?;
        attributes.fulfill.get_or_insert(false);
        let time = self.clock.now();
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
        sku.updated_time = self.clock.now().max(sku.created_time);
        let sku = self.check_managed_part(txn, sku).await?;
        store::update_sku(txn, &sku).await?;
        let saga = self.sagas.open_saga(txn, Some(&existing), Some(&sku)).await?;
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
                if !store::manufacturer_part_exists(txn, manufacturer_id, &part.part_number, RowLock::Shared).await? {
                    return Err(not_registered());
                }
            }
            None => {
                let manufacturers = store::manufacturers_of_part(txn, &part.part_number, 2).await?;
                match manufacturers.as_slice() {
                    [only] => sku.attributes.manufacturer_id = Some(only.clone()),
                    _ => return Err(not_registered()),
                }
            }
        }
        Ok(sku)
    }
}
