//! The consistency check (docs/architecture.md, "The saga"): pages through the managed SKUs and
//! the items they own, reporting every pair out of step that no open saga explains. It reads both
//! services and changes nothing, so it is an operation of its own beside the saga's.

use std::collections::{BTreeSet, HashMap, HashSet};

use fulfillment_errors::FieldViolation;
use fulfillment_proto::inventory::v1 as inventory;
use fulfillment_server::calls::Outcome;
use fulfillment_storage::paging::Cursor;

use crate::catalog::Catalog;
use crate::domain::{Inconsistency, Sku, SkuFilter};
use crate::error::CatalogError;
use crate::inventory_client::ItemSpec;
use crate::store;

impl Catalog {
    /// Compares one page of managed SKUs with their items, then, once the SKUs are done, one page
    /// of owned items with their SKUs, going on from `token` (from the start when empty). Answers
    /// what it found and the token of the next page, empty when the check is complete: a call costs
    /// at most a page of each, however many SKUs and items there are.
    pub async fn check_consistency(
        &self,
        size: u64,
        token: &str,
    ) -> Result<(Vec<Inconsistency>, String), CatalogError> {
        let mut found = Vec::new();
        let mut looked_at: Vec<String> = Vec::new();
        let mut next = String::new();
        let mut from = CheckFrom::decode(token)?;
        let open_before = store::open_saga_ids(self.db.connection()).await?;
        if let CheckFrom::Skus(cursor) = &from {
            let skus = store::list_skus(self.db.connection(), &Default::default(), cursor.as_ref(), size).await?;
            let managed: Vec<(&Sku, ItemSpec)> =
                skus.iter().filter_map(|sku| ItemSpec::of(sku).map(|spec| (sku, spec))).collect();
            let ids = managed.iter().map(|(sku, _)| sku.id.clone()).collect();
            let items = settled(self.items.items_with_ids(ids).await)?;
            let owned: HashMap<&str, &inventory::InventoryItem> = items
                .iter()
                .filter(|item| !item.owner_sku_id.is_empty())
                .map(|item| (item.id.as_str(), item))
                .collect();
            for (sku, spec) in &managed {
                match owned.get(sku.id.as_str()) {
                    None => found.push(Inconsistency::MissingItem(sku.id.clone())),
                    Some(item) if !spec.matches(item) => found.push(Inconsistency::ItemDiffers(sku.id.clone())),
                    Some(_) => {}
                }
            }
            looked_at.extend(skus.iter().map(|sku| sku.id.clone()));
            match skus.last() {
                Some(last) if skus.len() as u64 == size => {
                    next = format!("s:{}", Cursor::after(last.created_time, &last.id).encode());
                }
                _ => from = CheckFrom::Items(String::new()),
            }
        }
        if let CheckFrom::Items(token) = &from {
            let (owned, next_items) = settled(self.items.owned_items_page(token, size).await)?;
            let ids: Vec<String> = owned.iter().map(|item| item.id.clone()).collect();
            let filter = SkuFilter { ids: ids.clone(), ..Default::default() };
            let skus = store::list_skus(self.db.connection(), &filter, None, size).await?;
            let managed: HashSet<&str> =
                skus.iter().filter(|sku| ItemSpec::of(sku).is_some()).map(|sku| sku.id.as_str()).collect();
            found
                .extend(ids.iter().filter(|id| !managed.contains(id.as_str())).cloned().map(Inconsistency::OrphanItem));
            looked_at.extend(ids);
            if !next_items.is_empty() {
                next = format!("i:{next_items}");
            }
        }
        // A pair with a saga open before or after the reads is in flight, not inconsistent.
        let looked_at: HashSet<String> = looked_at.into_iter().collect();
        let open: BTreeSet<String> = open_before
            .into_iter()
            .chain(store::open_saga_ids(self.db.connection()).await?)
            .filter(|id| looked_at.contains(id))
            .collect();
        found.retain(|finding| match finding {
            Inconsistency::MissingItem(id) | Inconsistency::ItemDiffers(id) | Inconsistency::OrphanItem(id) => {
                !open.contains(id)
            }
            Inconsistency::OpenSaga(_) => true,
        });
        found.extend(open.into_iter().map(Inconsistency::OpenSaga));
        Ok((found, next))
    }
}

/// Where a paged consistency check goes on: among the SKUs after a cursor, or among the
/// Inventory's items after its page token.
enum CheckFrom {
    Skus(Option<Cursor>),
    Items(String),
}

impl CheckFrom {
    fn decode(token: &str) -> Result<Self, CatalogError> {
        let refused = || CatalogError::invalid(FieldViolation::not_valid("pageToken", token, "page token"));
        if token.is_empty() {
            return Ok(CheckFrom::Skus(None));
        }
        match token.split_once(':') {
            Some(("s", cursor)) => Ok(CheckFrom::Skus(Cursor::decode(cursor).map_err(|_| refused())?)),
            Some(("i", items)) if !items.is_empty() => Ok(CheckFrom::Items(items.to_owned())),
            _ => Err(refused()),
        }
    }
}

/// What a read from the Inventory found, or the error its failure is.
fn settled<T>(outcome: Outcome<T>) -> Result<T, CatalogError> {
    match outcome {
        Outcome::Done(value) => Ok(value),
        Outcome::Refused(status) => Err(CatalogError::Inventory(status)),
        Outcome::NotSent(status) | Outcome::Unknown(status) => Err(CatalogError::InventoryUnavailable(status)),
    }
}
