# syntax=docker/dockerfile:1
# The one Rapport image: the `rapport` binary on a distroless base (no shell,
# no package manager) as a non-root user. Every Deployment runs it with
# `serve <service>`, the migrations Job with `migrate`. `make image` builds it.

# Build stage. CI runs this stage's cargo command itself, read from this file
# (scripts/image-build-stage.sh, part of `make test`), on the same build
# context `.dockerignore` lets through. No database is needed: no sqlx query macro checks SQL at build time, and sqlx::migrate!
# only embeds the migration files.
FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
ENV SQLX_OFFLINE=true
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p rapport \
    && install -D -m 0755 target/release/rapport /out/rapport

# Final stage: glibc and CA certificates only (distroless cc, same Debian
# release as the build stage), user 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/rapport /usr/local/bin/rapport
USER 65532:65532
# Every service's gRPC port and /metrics port (the chart's values; checked
# by helm/tests: gateway 50050/9150, contacts 50051/9151, pipeline 50052/9152).
EXPOSE 50050 50051 50052 50053 9150 9151 9152 9153
ENTRYPOINT ["rapport"]
