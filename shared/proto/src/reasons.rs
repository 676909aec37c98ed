//! The refusal reasons a service sends in `google.rpc.ErrorInfo` and its peers act on, read and
//! written through the contract's enums so that no crate spells them out again.

use tonic_types::StatusExt;

use crate::inventory::v1::InventoryErrorReason;

const INVENTORY_PREFIX: &str = "INVENTORY_ERROR_REASON_";

impl InventoryErrorReason {
    /// The `ErrorInfo.reason` sent for this value: its name after the prefix, in lower case.
    pub fn reason(self) -> String {
        self.as_str_name().trim_start_matches(INVENTORY_PREFIX).to_ascii_lowercase()
    }

    /// The value an `ErrorInfo.reason` names, spelled exactly as sent; `None` for any other.
    pub fn from_reason(reason: &str) -> Option<Self> {
        let value = Self::from_str_name(&format!("{INVENTORY_PREFIX}{}", reason.to_ascii_uppercase()))?;
        (value != Self::Unspecified && value.reason() == reason).then_some(value)
    }

    /// The Inventory's reason for refusing with `status`, when its details name one.
    pub fn of(status: &tonic::Status) -> Option<Self> {
        Self::from_reason(&status.get_details_error_info()?.reason)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_reason() -> Vec<InventoryErrorReason> {
        (1..).map_while(|n| InventoryErrorReason::try_from(n).ok()).collect()
    }

    #[test]
    fn every_inventory_reason_is_sent_as_its_lower_case_name_and_read_back() {
        let reasons = every_reason();
        assert!(reasons.len() >= 10, "the enum has its values");
        for value in reasons {
            let reason = value.reason();
            assert!(!reason.is_empty() && reason.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{reason}");
            assert_eq!(InventoryErrorReason::from_reason(&reason), Some(value));
        }
        assert_eq!(InventoryErrorReason::HoldClosed.reason(), "hold_closed");
    }

    #[test]
    fn only_the_exact_spelling_of_a_defined_reason_is_read() {
        for other in ["HOLD_CLOSED", "unspecified", "", "hold_closed ", "INVENTORY_ERROR_REASON_HOLD_CLOSED"] {
            assert_eq!(InventoryErrorReason::from_reason(other), None, "{other:?}");
        }
    }

    #[test]
    fn a_status_names_its_reason_through_its_error_info() {
        let details = tonic_types::ErrorDetails::with_error_info("not_owned", "inventory.fulfillment", []);
        let status = tonic::Status::with_error_details(tonic::Code::FailedPrecondition, "no", details);
        assert_eq!(InventoryErrorReason::of(&status), Some(InventoryErrorReason::NotOwned));
        assert_eq!(InventoryErrorReason::of(&tonic::Status::failed_precondition("no details")), None);
    }
}
