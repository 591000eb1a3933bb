# The Shoal image: a static binary on a distroless base, running as a non-root user.
# Build with `make docker-build` (passes VERSION).

FROM golang:1.26 AS builder
ARG VERSION=dev
WORKDIR /src
# Dependencies first, so that they stay cached while only the sources change.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-X github.com/shoal-dev/shoal/internal/version.Version=${VERSION}" -o /shoal .

FROM gcr.io/distroless/static:nonroot
COPY --from=builder /shoal /shoal
USER 65532:65532
ENTRYPOINT ["/shoal"]
