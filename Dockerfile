# Build: docker build -t booking .   (or through compose.yml)
# One image holds the six binaries (ingress, workers, bookctl, the local gateway, the local SMTP sink and SMS provider); compose.yml picks one per service by `command`.

FROM rust:1.95-bookworm AS builder
WORKDIR /src
# Queries are checked at run time (or from a committed .sqlx/): no database at build time.
ENV SQLX_OFFLINE=true \
    CARGO_TERM_COLOR=never
COPY . .
RUN cargo build --release --locked --bin ingress --bin workers --bin bookctl --bin gateway --bin smtp-sink --bin sms-sink \
 && mkdir -p /out \
 && cp target/release/ingress target/release/workers target/release/bookctl target/release/gateway target/release/smtp-sink target/release/sms-sink /out/

FROM debian:bookworm-slim AS runtime
# ca-certificates for TLS to outside services; curl for the compose healthchecks;
# tzdata for theaters' time zones (the binaries also bundle a copy, used without it).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin app
COPY --from=builder /out/ingress /out/workers /out/bookctl /out/gateway /out/smtp-sink /out/sms-sink /usr/local/bin/
USER app:app
WORKDIR /tmp
ENV RUST_LOG=info \
    APP__INGRESS__LISTEN=0.0.0.0:8080
EXPOSE 8080
CMD ["ingress"]
