/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Kemari replication wire format, version 1.
 *
 * Every message is a 16-byte header followed by a body. All integers are
 * little-endian and fixed-width. docs/protocol.md is the reference; this
 * header is its C shape. Decoding is split into steps so a stream receiver
 * can validate each length before it reads (or allocates for) the bytes
 * that follow:
 *
 *   km_wire_decode_hdr()        magic, version, type, length bounds
 *   km_wire_meta_len()          how much of the body the checksum covers
 *   km_wire_verify()            header checksum over header + meta
 *   km_wire_decode_<type>()     the body's fields
 *
 * km_wire_decode() runs all of them over one complete buffer (tests, fuzzer).
 */
#ifndef KEMARI_REPLICATOR_WIRE_H
#define KEMARI_REPLICATOR_WIRE_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#define KM_WIRE_MAGIC 0x49524d4bu /* "KMRI" as bytes on the wire */
#define KM_WIRE_VERSION 2
#define KM_WIRE_HDR_SIZE 16
#define KM_PAGE_SIZE 4096u
#define KM_NONCE_SIZE 32
#define KM_MAC_SIZE 32

/* Size limits; every one is checked by the decoder. */
#define KM_PAGES_META_FIXED 8u
#define KM_PAGE_RUN_SIZE 16u
#define KM_PAGES_MAX_RUNS 1024u
#define KM_PAGES_MAX_DATA_PAGES 1024u /* 4 MiB of page data per message */
#define KM_STATE_META_SIZE 8u
#define KM_STATE_MAX_DATA (16u << 20)
#define KM_ERROR_MAX_TEXT 256u

/* Error codes of the replicator, as negative errno values. */
#define KM_EMAGIC EBADMSG /* header magic is not KMRI */
#define KM_EVERSION EPROTONOSUPPORT /* unknown protocol version */
#define KM_ETYPE ENOMSG /* unknown message type */
#define KM_ELENGTH EMSGSIZE /* a length field is out of bounds */
#define KM_ECHECKSUM EILSEQ /* message or epoch checksum mismatch */
#define KM_ETAG EKEYREJECTED /* epoch MAC tag or state tag invalid */
#define KM_EAUTH EACCES /* peer failed to prove the pre-shared key */
#define KM_EGENERATION ESTALE /* epoch from a lower generation */
#define KM_EDUPLICATE EALREADY /* epoch equal to the last committed one */
#define KM_EREPLAY EBADR /* epoch older than the last committed one */
#define KM_EGAP ERANGE /* epoch skips at least one epoch */
#define KM_ESEQUENCE EPROTO /* message not allowed at this point */
#define KM_EFIELD EINVAL /* a field holds a value outside its domain */

enum km_msg_type {
	KM_MSG_HELLO = 1,
	KM_MSG_CHALLENGE = 2,
	KM_MSG_RESPONSE = 3,
	KM_MSG_BEGIN = 4,
	KM_MSG_PAGES = 5,
	KM_MSG_STATE = 6,
	KM_MSG_COMMIT = 7,
	KM_MSG_ACK = 8,
	KM_MSG_ERROR = 9,
	KM_MSG_TYPE_MAX = 9,
};

/* Flags. Unknown bits are rejected with KM_EFIELD. */
#define KM_HELLO_DATA_AUTH 0x1u /* epochs carry a MAC (full-data auth) */
#define KM_BEGIN_SYNC 0x1u /* initial-sync round: written in place */
#define KM_RUN_ZERO 0x1u /* run of zero pages, no data follows */
#define KM_COMMIT_MAC 0x1u /* a KM_MAC_SIZE tag follows the fields */

struct km_wire_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t type;
	uint32_t length; /* body bytes after the header */
	uint32_t checksum; /* XXH3-64 low half, see km_wire_verify() */
};

#define KM_HELLO_SIZE 48u
struct km_msg_hello {
	uint32_t flags;
	uint32_t page_size;
	uint64_t mem_size;
	uint8_t nonce[KM_NONCE_SIZE];
};

#define KM_CHALLENGE_SIZE 64u
struct km_msg_challenge {
	uint8_t nonce[KM_NONCE_SIZE];
	uint8_t mac[KM_MAC_SIZE];
};

#define KM_RESPONSE_SIZE 32u
struct km_msg_response {
	uint8_t mac[KM_MAC_SIZE];
};

#define KM_BEGIN_SIZE 24u
struct km_msg_begin {
	uint64_t epoch;
	uint64_t generation;
	uint32_t flags;
};

struct km_page_run {
	uint64_t first; /* page number */
	uint32_t count; /* pages, >= 1 */
	uint32_t flags; /* KM_RUN_ZERO */
};

/* A decoded PAGES meta part; runs are read with km_wire_pages_run(). */
struct km_msg_pages {
	uint32_t nruns;
	uint32_t data_pages; /* pages of data after the run table */
	const uint8_t *runs; /* the run table, still in wire order */
};

struct km_msg_state {
	uint32_t tag; /* opaque to the replicator, never 0 */
	uint32_t data_len;
};

#define KM_COMMIT_SIZE 32u
struct km_msg_commit {
	uint64_t epoch;
	uint64_t generation;
	uint64_t digest; /* CRC-64/XZ of every PAGES/STATE body (digest.h) */
	uint32_t flags;
	uint32_t nmsgs; /* PAGES + STATE messages in the epoch */
	uint8_t mac[KM_MAC_SIZE]; /* valid if flags & KM_COMMIT_MAC */
};

#define KM_ACK_SIZE 16u
struct km_msg_ack {
	uint64_t epoch;
	uint64_t generation;
};

#define KM_ERROR_FIXED 16u
struct km_msg_error {
	int32_t code; /* negative errno */
	uint64_t epoch;
	char text[KM_ERROR_MAX_TEXT + 1];
};

/* Whole-buffer decode result (tests, fuzzer, small control messages). */
struct km_msg {
	struct km_wire_hdr hdr;
	union {
		struct km_msg_hello hello;
		struct km_msg_challenge challenge;
		struct km_msg_response response;
		struct km_msg_begin begin;
		struct km_msg_pages pages;
		struct km_msg_state state;
		struct km_msg_commit commit;
		struct km_msg_ack ack;
		struct km_msg_error error;
	};
	const uint8_t *data; /* PAGES/STATE payload inside the buffer */
	size_t data_len;
};

/** km_strerror() - text for a replicator error (negative errno) code. */
const char *km_strerror(int err);

/**
 * km_wire_decode_hdr() - decode and bound-check a message header.
 * @buf: at least KM_WIRE_HDR_SIZE bytes.
 *
 * Checks magic, version, type and that length lies within the bounds of
 * that type. Does not check the checksum: that needs the meta part.
 * Return: 0, -KM_EMAGIC, -KM_EVERSION, -KM_ETYPE or -KM_ELENGTH.
 */
int km_wire_decode_hdr(const void *buf, size_t len, struct km_wire_hdr *h);

/**
 * km_wire_meta_len() - bytes of the body covered by the header checksum.
 * @prefix: the first @plen bytes of the body; PAGES needs 8 of them.
 * @meta_len: set to the covered length (whole body for control messages,
 *	8 + 16 * nruns for PAGES, 8 for STATE).
 *
 * Return: 0, -EAGAIN if @plen is too short to tell, -KM_ELENGTH.
 */
int km_wire_meta_len(const struct km_wire_hdr *h, const void *prefix,
		     size_t plen, size_t *meta_len);

/**
 * km_wire_verify() - check the header checksum.
 * @hdr: the raw KM_WIRE_HDR_SIZE header bytes.
 * @meta: the first km_wire_meta_len() bytes of the body.
 * Return: 0 or -KM_ECHECKSUM.
 */
int km_wire_verify(const void *hdr, const void *meta, size_t meta_len);

/** km_wire_decode_hello() - decode a HELLO body of h->length bytes. */
int km_wire_decode_hello(const struct km_wire_hdr *h, const void *body,
			 size_t len, struct km_msg_hello *m);
/** km_wire_decode_challenge() - decode a CHALLENGE body. */
int km_wire_decode_challenge(const struct km_wire_hdr *h, const void *body,
			     size_t len, struct km_msg_challenge *m);
/** km_wire_decode_response() - decode a RESPONSE body. */
int km_wire_decode_response(const struct km_wire_hdr *h, const void *body,
			    size_t len, struct km_msg_response *m);
/** km_wire_decode_begin() - decode a BEGIN body; rejects epoch 0. */
int km_wire_decode_begin(const struct km_wire_hdr *h, const void *body,
			 size_t len, struct km_msg_begin *m);
/**
 * km_wire_decode_pages() - decode and validate a PAGES meta part.
 * @mem_pages: pages of guest memory; every run must lie inside it.
 *
 * Checks the run count, that length == meta + data_pages * page size, that
 * every run is non-empty, in bounds, with known flags, and that the data
 * runs add up to data_pages.
 */
int km_wire_decode_pages(const struct km_wire_hdr *h, const void *meta,
			 size_t len, uint64_t mem_pages,
			 struct km_msg_pages *m);
/** km_wire_pages_run() - read run @i of a decoded PAGES message. */
void km_wire_pages_run(const struct km_msg_pages *m, uint32_t i,
		       struct km_page_run *run);
/** km_wire_decode_state() - decode a STATE meta part (tag must be != 0). */
int km_wire_decode_state(const struct km_wire_hdr *h, const void *meta,
			 size_t len, struct km_msg_state *m);
/** km_wire_decode_commit() - decode a COMMIT body (with or without MAC). */
int km_wire_decode_commit(const struct km_wire_hdr *h, const void *body,
			  size_t len, struct km_msg_commit *m);
/** km_wire_decode_ack() - decode an ACK body. */
int km_wire_decode_ack(const struct km_wire_hdr *h, const void *body,
		       size_t len, struct km_msg_ack *m);
/** km_wire_decode_error() - decode an ERROR body (text must be printable). */
int km_wire_decode_error(const struct km_wire_hdr *h, const void *body,
			 size_t len, struct km_msg_error *m);

/**
 * km_wire_decode() - decode one complete message from a buffer.
 * @mem_pages: bound for PAGES runs.
 * Return: bytes consumed (> 0) or a negative error as the steps above.
 */
long km_wire_decode(const void *buf, size_t len, uint64_t mem_pages,
		    struct km_msg *m);

/*
 * Encoders write header and body into @buf and seal the checksum. They
 * return the bytes written; @buf must hold KM_WIRE_HDR_SIZE plus the body
 * size named next to each struct.
 */
/** km_wire_encode_hello() - encode a HELLO. */
size_t km_wire_encode_hello(void *buf, const struct km_msg_hello *m);
/** km_wire_encode_challenge() - encode a CHALLENGE. */
size_t km_wire_encode_challenge(void *buf, const struct km_msg_challenge *m);
/** km_wire_encode_response() - encode a RESPONSE. */
size_t km_wire_encode_response(void *buf, const struct km_msg_response *m);
/** km_wire_encode_begin() - encode a BEGIN. */
size_t km_wire_encode_begin(void *buf, const struct km_msg_begin *m);
/**
 * km_wire_encode_pages() - encode a PAGES header and meta part.
 * @runs: @nruns runs; the data (data pages * KM_PAGE_SIZE) is sent after
 *	the returned bytes by the caller, straight from guest memory.
 * @buf: KM_WIRE_HDR_SIZE + 8 + 16 * @nruns bytes.
 */
size_t km_wire_encode_pages(void *buf, const struct km_page_run *runs,
			    uint32_t nruns, uint32_t data_pages);
/** km_wire_encode_state() - encode a STATE header and meta; data follows. */
size_t km_wire_encode_state(void *buf, uint32_t tag, uint32_t data_len);
/** km_wire_encode_commit() - encode a COMMIT (MAC if KM_COMMIT_MAC). */
size_t km_wire_encode_commit(void *buf, const struct km_msg_commit *m);
/** km_wire_encode_ack() - encode an ACK. */
size_t km_wire_encode_ack(void *buf, const struct km_msg_ack *m);
/** km_wire_encode_error() - encode an ERROR; text is cut to the limit. */
size_t km_wire_encode_error(void *buf, int code, uint64_t epoch,
			    const char *text);

#endif
