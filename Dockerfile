# syntax=docker/dockerfile:1
# One image per service, all from this file: docker build --target catalog -t fulfillment/catalog .
# (targets: catalog, inventory, reservation, launcher, fulfillctl). The images hold one static-ish
# binary on distroless: no shell, no package manager, running as the nonroot user (65532).

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
# The caches keep crates and build output between builds; the binaries are copied out of them.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin catalog --bin inventory --bin reservation --bin launcher --bin fulfillctl \
    && mkdir -p /out \
    && cp target/release/catalog target/release/inventory target/release/reservation \
          target/release/launcher target/release/fulfillctl /out/

FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
ENV LOG_FORMAT=json
USER nonroot:nonroot

FROM runtime AS catalog
COPY --from=build /out/catalog /usr/local/bin/catalog
ENV CATALOG_LISTEN_ADDR=0.0.0.0:50051 CATALOG_METRICS_ADDR=0.0.0.0:9101
EXPOSE 50051 9101
ENTRYPOINT ["/usr/local/bin/catalog"]

FROM runtime AS inventory
COPY --from=build /out/inventory /usr/local/bin/inventory
ENV INVENTORY_LISTEN_ADDR=0.0.0.0:50052 INVENTORY_METRICS_ADDR=0.0.0.0:9102
EXPOSE 50052 9102
ENTRYPOINT ["/usr/local/bin/inventory"]

FROM runtime AS reservation
COPY --from=build /out/reservation /usr/local/bin/reservation
ENV RESERVATION_LISTEN_ADDR=0.0.0.0:50053 RESERVATION_METRICS_ADDR=0.0.0.0:9103
EXPOSE 50053 9103
ENTRYPOINT ["/usr/local/bin/reservation"]

# All three in one process on SQLite under /home/nonroot/data: for trying the suite, not for production.
FROM runtime AS launcher
COPY --from=build /out/launcher /usr/local/bin/launcher
WORKDIR /home/nonroot
ENV CATALOG_LISTEN_ADDR=0.0.0.0:50051 INVENTORY_LISTEN_ADDR=0.0.0.0:50052 RESERVATION_LISTEN_ADDR=0.0.0.0:50053 \
    CATALOG_METRICS_ADDR=0.0.0.0:9101 INVENTORY_METRICS_ADDR=0.0.0.0:9102 RESERVATION_METRICS_ADDR=0.0.0.0:9103 \
    LOG_FORMAT=text
EXPOSE 50051 50052 50053 9101 9102 9103
ENTRYPOINT ["/usr/local/bin/launcher"]

FROM runtime AS fulfillctl
COPY --from=build /out/fulfillctl /usr/local/bin/fulfillctl
ENTRYPOINT ["/usr/local/bin/fulfillctl"]
