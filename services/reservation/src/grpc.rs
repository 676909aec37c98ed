//! The gRPC adapter: converts between the contract's messages and the domain, and nothing else.

use chrono::{DateTime, Utc};
use fulfillment_access::{ByMode, Need, Policy};
use fulfillment_errors::{FieldViolation, Violations};
use fulfillment_proto::common::v1 as common;
use fulfillment_proto::inventory::v1 as inventory;
use fulfillment_proto::reservation::v1 as pb;
use fulfillment_proto::reservation::v1::reservation_service_server::ReservationService;
use fulfillment_proto::time::timestamp;
use fulfillment_server::request::{non_empty, time_range};
use fulfillment_storage::paging::page_size;
use tonic::{Request, Response, Status};

use crate::domain::{Address, NewReservation, Reservation, ReservationItem, ShippingChoice, State};
use crate::error::ReservationError;
use crate::fulfillment::FulfillmentOrder;
use crate::store::Reservations;

/// The Reservation service's gRPC service.
#[derive(Clone, Debug)]
pub struct ReservationGrpc {
    services: ByMode<Reservations>,
}

impl ReservationGrpc {
    /// Serves the live and the test reservations over gRPC, each call from the ones of its key's mode.
    pub fn new(services: ByMode<Reservations>) -> Self {
        Self { services }
    }

    /// What each RPC needs of its caller's key.
    pub fn policy(policy: Policy) -> Policy {
        use fulfillment_proto::reservation::v1::reservation_service_server::SERVICE_NAME;
        policy.service(
            SERVICE_NAME,
            &[
                ("CreateReservation", Need::Write),
                ("GetReservation", Need::Read),
                ("ListReservations", Need::Read),
                ("CancelReservation", Need::Write),
                ("CreateFulfillmentOrder", Need::Write),
                ("GetFulfillmentOrder", Need::Read),
                ("ListFulfillmentOrders", Need::Read),
            ],
        )
    }
}

fn status(error: ReservationError) -> Status {
    error.into_status()
}

fn invalid(violation: FieldViolation) -> Status {
    status(ReservationError::invalid(violation))
}

#[tonic::async_trait]
impl ReservationService for ReservationGrpc {
    async fn create_reservation(
        &self,
        request: Request<pb::CreateReservationRequest>,
    ) -> Result<Response<pb::CreateReservationResponse>, Status> {
        let reservations = self.services.pick(&request)?;
        let reservation = request.into_inner().reservation.unwrap_or_default();
        let address = reservation.ship_to.and_then(|s| s.address).unwrap_or_default();
        let request = NewReservation {
            id: non_empty(reservation.id),
            items: reservation.items.into_iter().map(item_from_proto).collect(),
            ship_to: Address {
                line1: address.line1,
                line2: address.line2,
                city: address.city,
                postal_code: address.postal_code,
                state: address.state,
                country: address.country,
            },
            shipping_choice: reservation.shipping_choice.map(|c| ShippingChoice {
                currency: c.currency,
                amount: c.amount,
                service_level: c.service_level,
            }),
            expires_in_seconds: reservation.expires_in_seconds,
        };
        let created = reservations.create(request).await.map_err(status)?;
        Ok(Response::new(pb::CreateReservationResponse {
            reservation: Some(reservation_to_proto(created, reservations.clock.now())),
        }))
    }

    async fn get_reservation(
        &self,
        request: Request<pb::GetReservationRequest>,
    ) -> Result<Response<pb::GetReservationResponse>, Status> {
        let reservations = self.services.pick(&request)?;
        let reservation = reservations.get(&request.into_inner().id).await.map_err(status)?;
        let now = reservations.clock.now();
        Ok(Response::new(pb::GetReservationResponse { reservation: Some(reservation_to_proto(reservation, now)) }))
    }

    async fn list_reservations(
        &self,
        request: Request<pb::ListReservationsRequest>,
    ) -> Result<Response<pb::ListReservationsResponse>, Status> {
        let reservations = self.services.pick(&request)?;
        let request = request.into_inner();
        let size = page_size(request.page_size).map_err(invalid)?;
        // The same mapping as the state each reservation is shown in.
        let (states, expired): (&[State], Option<bool>) = match pb::ReservationState::try_from(request.state) {
            Ok(pb::ReservationState::Unspecified) => (&[], None),
            Ok(pb::ReservationState::Pending) => (&[State::Pending], None),
            Ok(pb::ReservationState::Active) => (&[State::Active, State::Committing, State::Releasing], Some(false)),
            Ok(pb::ReservationState::Cancelled) => (&[State::Cancelled], None),
            Ok(pb::ReservationState::Fulfilled) => (&[State::Fulfilled], None),
            Ok(pb::ReservationState::Expired) => (&[], Some(true)),
            Err(_) => return Err(invalid(FieldViolation::not_valid("state", &request.state.to_string(), "state"))),
        };
        let mut violations = Violations::new();
        let created = time_range(request.created_time, "createdTime", &mut violations);
        if !violations.is_empty() {
            return Err(status(ReservationError::InvalidRequest(violations)));
        }
        let page = reservations.list(states, expired, created, size, &request.page_token).await.map_err(status)?;
        let now = reservations.clock.now();
        Ok(Response::new(pb::ListReservationsResponse {
            reservations: page.items.into_iter().map(|r| reservation_to_proto(r, now)).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn cancel_reservation(
        &self,
        request: Request<pb::CancelReservationRequest>,
    ) -> Result<Response<pb::CancelReservationResponse>, Status> {
        let reservations = self.services.pick(&request)?;
        let reservation = reservations.cancel(&request.into_inner().id).await.map_err(status)?;
        let now = reservations.clock.now();
        Ok(Response::new(pb::CancelReservationResponse { reservation: Some(reservation_to_proto(reservation, now)) }))
    }

    async fn create_fulfillment_order(
        &self,
        request: Request<pb::CreateFulfillmentOrderRequest>,
    ) -> Result<Response<pb::CreateFulfillmentOrderResponse>, Status> {
        let reservations = self.services.pick(&request)?;
        let request = request.into_inner();
        let upstream = non_empty(request.upstream_id);
        let items = request.items.into_iter().map(item_from_proto).collect();
        let order = reservations.create_order(&request.reservation_id, upstream, items).await.map_err(status)?;
        Ok(Response::new(pb::CreateFulfillmentOrderResponse { fulfillment_order: Some(order_to_proto(order)) }))
    }

    async fn get_fulfillment_order(
        &self,
        request: Request<pb::GetFulfillmentOrderRequest>,
    ) -> Result<Response<pb::GetFulfillmentOrderResponse>, Status> {
        let reservations = self.services.pick(&request)?;
        let order = reservations.get_order(&request.into_inner().id).await.map_err(status)?;
        Ok(Response::new(pb::GetFulfillmentOrderResponse { fulfillment_order: Some(order_to_proto(order)) }))
    }

    async fn list_fulfillment_orders(
        &self,
        request: Request<pb::ListFulfillmentOrdersRequest>,
    ) -> Result<Response<pb::ListFulfillmentOrdersResponse>, Status> {
        let reservations = self.services.pick(&request)?;
        let request = request.into_inner();
        let size = page_size(request.page_size).map_err(invalid)?;
        let reservation_id = non_empty(request.reservation_id);
        let page =
            reservations.list_orders(reservation_id.as_deref(), size, &request.page_token).await.map_err(status)?;
        Ok(Response::new(pb::ListFulfillmentOrdersResponse {
            fulfillment_orders: page.items.into_iter().map(order_to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }
}

fn item_from_proto(item: pb::ReservationItem) -> ReservationItem {
    ReservationItem {
        inventory_item_id: item.inventory_item_id,
        quantity: item.quantity,
        allow_oversell: item.allow_oversell,
    }
}

/// A reservation as the contract shows it at `now`: past its expiry, an active one reads expired.
fn reservation_to_proto(reservation: Reservation, now: DateTime<Utc>) -> pb::Reservation {
    let state = match reservation.state {
        State::Pending => pb::ReservationState::Pending,
        // A change under way shows as where it started until it is made.
        State::Active | State::Committing | State::Releasing if reservation.expire_time <= now => {
            pb::ReservationState::Expired
        }
        State::Active | State::Committing | State::Releasing => pb::ReservationState::Active,
        State::Cancelled => pb::ReservationState::Cancelled,
        State::Fulfilled => pb::ReservationState::Fulfilled,
        State::Expiring => pb::ReservationState::Expired,
    };
    let address = reservation.ship_to;
    pb::Reservation {
        id: reservation.id,
        items: reservation
            .items
            .into_iter()
            .map(|item| pb::ReservationItem {
                inventory_item_id: item.inventory_item_id,
                quantity: item.quantity,
                allow_oversell: item.allow_oversell,
            })
            .collect(),
        ship_to: Some(pb::ShipTo {
            address: Some(common::Address {
                line1: address.line1,
                line2: address.line2,
                city: address.city,
                postal_code: address.postal_code,
                state: address.state,
                country: address.country,
            }),
        }),
        shipping_choice: reservation.shipping_choice.map(|c| pb::ShippingChoice {
            currency: c.currency,
            amount: c.amount,
            service_level: c.service_level,
        }),
        expires_in_seconds: reservation.expires_in_seconds,
        state: state.into(),
        expire_time: Some(timestamp(reservation.expire_time)),
        allocations: reservation
            .allocations
            .into_iter()
            .map(|a| inventory::HoldAllocation {
                inventory_item_id: a.inventory_item_id,
                warehouse_id: a.warehouse_id,
                quantity: a.quantity,
                oversold_quantity: a.oversold_quantity,
            })
            .collect(),
        live_mode: reservation.live_mode,
        created_time: Some(timestamp(reservation.created_time)),
        updated_time: Some(timestamp(reservation.updated_time)),
    }
}

fn order_to_proto(order: FulfillmentOrder) -> pb::FulfillmentOrder {
    pb::FulfillmentOrder {
        id: order.id,
        reservation_id: order.reservation_id,
        upstream_id: order.upstream_id.unwrap_or_default(),
        lines: order
            .lines
            .into_iter()
            .map(|l| pb::FulfillmentOrderLine {
                inventory_item_id: l.inventory_item_id,
                warehouse_id: l.warehouse_id,
                quantity: l.quantity,
            })
            .collect(),
        live_mode: order.live_mode,
        created_time: Some(timestamp(order.created_time)),
    }
}
