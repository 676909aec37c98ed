//! The suite's protobuf contracts, generated at build time from `proto/`.
//!
//! Each package is a module named after it: `fulfillment.catalog.v1` is [`catalog::v1`].

#![allow(unreachable_pub, clippy::all)]

/// `fulfillment.common.v1`: messages shared by every service.
pub mod common {
    pub mod v1 {
        tonic::include_proto!("fulfillment.common.v1");
    }
}

/// `fulfillment.catalog.v1`: SKUs and the manufacturer-parts registry.
pub mod catalog {
    pub mod v1 {
        tonic::include_proto!("fulfillment.catalog.v1");
    }
}

/// `fulfillment.inventory.v1`: inventory items, warehouses, stock and holds.
pub mod inventory {
    pub mod v1 {
        tonic::include_proto!("fulfillment.inventory.v1");
    }
}

/// `fulfillment.reservation.v1`: reservations and fulfillment orders.
pub mod reservation {
    pub mod v1 {
        tonic::include_proto!("fulfillment.reservation.v1");
    }
}

/// `fulfillment.access.v1`: API keys.
pub mod access {
    pub mod v1 {
        tonic::include_proto!("fulfillment.access.v1");
    }
}

pub mod codec;
pub mod reasons;
pub mod time;

/// The encoded descriptors of every contract, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("fulfillment_descriptor");

#[cfg(test)]
mod tests {
    use prost::Message;

    #[test]
    fn descriptor_set_names_every_package() {
        let set = prost_types::FileDescriptorSet::decode(super::FILE_DESCRIPTOR_SET)
            .expect("the embedded descriptor set decodes");
        let packages: Vec<_> = set.file.iter().filter_map(|f| f.package.clone()).collect();
        for expected in [
            "fulfillment.common.v1",
            "fulfillment.catalog.v1",
            "fulfillment.inventory.v1",
            "fulfillment.reservation.v1",
        ] {
            assert!(packages.iter().any(|p| p == expected), "{expected} missing");
        }
    }
}
