# Multi-stage build: one build stage compiles both binaries; each runtime stage carries one
# and runs it as a non-root user. `docker build --target provider .` (the default, last stage)
# or `--target relying-party`.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p provider -p relying-party

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/app --create-home app

FROM runtime AS relying-party
COPY --from=build /src/target/release/relying-party /usr/local/bin/relying-party
USER app
WORKDIR /var/lib/app
ENV RP_BIND=0.0.0.0:3000
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --retries=5 CMD curl -fsS http://127.0.0.1:3000/ || exit 1
ENTRYPOINT ["relying-party"]

FROM runtime AS provider
COPY --from=build /src/target/release/provider /usr/local/bin/provider
USER app
WORKDIR /var/lib/app
ENV BIND=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=5 CMD curl -fsS http://127.0.0.1:8080/readyz || exit 1
ENTRYPOINT ["provider"]
CMD ["serve"]
