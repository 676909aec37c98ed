//! The operations on the manufacturer-parts registry, which managed SKUs are checked against:
//! registering, listing and removing a pair no managed SKU relies on.

use fulfillment_reference::{MAX_SHORT_TEXT, validate_text};
use fulfillment_storage::paging::{Cursor, Page};

use crate::catalog::Catalog;
use crate::domain::validate_part_key;
use crate::error::CatalogError;
use crate::store::{self, ManufacturerPart, RowLock};

impl Catalog {
    /// Registers a manufacturer part; registering it again returns the first registration.
    pub async fn register_manufacturer_part(
        &self,
        manufacturer_id: &str,
        part_number: &str,
    ) -> Result<ManufacturerPart, CatalogError> {
        validate_part_key(manufacturer_id, part_number).map_err(CatalogError::InvalidRequest)?;
        let part = ManufacturerPart {
            manufacturer_id: manufacturer_id.to_owned(),
            part_number: part_number.to_owned(),
            created_time: self.clock.now(),
        };
        self.db
            .write(|txn| {
                let part = part.clone();
                Box::pin(async move { store::register_manufacturer_part(txn, part).await.map_err(CatalogError::from) })
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
        let rows = store::list_manufacturer_parts(
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
        validate_part_key(manufacturer_id, part_number).map_err(CatalogError::InvalidRequest)?;
        self.db
            .write(|txn| {
                let (manufacturer_id, part_number) = (manufacturer_id.to_owned(), part_number.to_owned());
                Box::pin(async move {
                    // Lock the pair first: a managed SKU being created holds it shared until it
                    // commits, so the usage check below then sees that SKU.
                    let exists =
                        store::manufacturer_part_exists(txn, &manufacturer_id, &part_number, RowLock::Exclusive)
                            .await?;
                    if !exists {
                        return Err(CatalogError::ManufacturerPartNotFound { manufacturer_id, part_number });
                    }
                    if let Some(sku_id) = store::managed_sku_using_part(txn, &manufacturer_id, &part_number).await? {
                        return Err(CatalogError::ManufacturerPartInUse { manufacturer_id, part_number, sku_id });
                    }
                    if store::delete_manufacturer_part(txn, &manufacturer_id, &part_number).await? {
                        Ok(())
                    } else {
                        Err(CatalogError::ManufacturerPartNotFound { manufacturer_id, part_number })
                    }
                })
            })
            .await
    }
}
