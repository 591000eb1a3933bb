// Package ingest is the HTTP ingest service: tenant apps POST events to
// /api/v1/events/ingest with their write key, and each accepted event is written to the
// tenant's Kafka topic before the request is answered.
//
// A request goes through, in order:
//
//  1. Authentication. The key comes from "Authorization: Bearer <key>" or "X-Shoal-Key".
//     A missing, unknown or revoked key, or one of a deleted tenant, is 401 with one and
//     the same message, so the answer says nothing about which keys exist. A suspended
//     tenant is 403 with the suspension reason. Lookups are cached by the key's SHA-256
//     for KeyCacheTTL, so a revoked key or a suspension takes effect within it. When the
//     metadata store cannot be reached, an entry up to KeyCacheMaxStale past its TTL is
//     still used (ingest keeps working through a PostgreSQL outage for keys it has seen);
//     a key with no usable entry gets 503 with Retry-After. After a failed lookup the
//     store is left alone for a second, so an outage costs no request a lookup timeout.
//  2. Size limits from the tenant's plan: the body is cut off while it is read, both on
//     the wire and after decompression (413), and the decoder checks each event.
//  3. Decoding and per-event validation (runtime/events). Invalid events are reported by
//     their index in the request; the valid ones go on.
//  4. Rate limiting: a token bucket per tenant (the plan's eventsPerSecond and burst),
//     charged one token per valid event. Over the limit is 429 with Retry-After; every
//     answer past authentication carries RateLimit-Limit, RateLimit-Remaining and
//     RateLimit-Reset. A request holding more events than the burst could never pass and
//     is 413. Tokens are not given back when Kafka then fails.
//  5. Producing: one record per event on naming.Topic(tenant), keyed by event_id, the
//     value events.Marshal, headers from RecordHeaders (content-type events.WireFormat,
//     and shoal-id-assigned when ingest assigned the id, which spares the processor a
//     lookup), acks=all with the idempotent producer. The answer waits for every ack, up
//     to AckTimeout.
//
// Memory: what a request needs (the body's buffer, its events, its records with their
// keys and values, the answer) is kept for later requests rather than allocated afresh.
// Records go back only once the Kafka client called every record's promise, so a request
// answered 503 at AckTimeout never has its records reused under the client.
//
// Answers: 200 with {"accepted", "rejected", "event_ids"} when at least one event was
// written (rejected lists the others by index, so partial success is a 200 whose body
// says what was refused); 400 with the same body when every event was invalid. Other
// failures are application/problem+json.
//
// Kafka failures: if any record of a request is not acknowledged within AckTimeout, the
// whole request is 503 with Retry-After, even when some of its records were written.
// Nothing is reported accepted that Kafka did not acknowledge, but a retry may write an
// event twice; storage deduplicates on event_id, so a retry is safe as long as the
// client sends the same event_id (events without one get a new id on every attempt).
package ingest
