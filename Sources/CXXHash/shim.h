#ifndef AFS_CXXHASH_SHIM_H
#define AFS_CXXHASH_SHIM_H
/* xxHash from Debian's libxxhash-dev, compiled into the caller (XXH_INLINE_ALL): the block
 * checksums that reads are checked against (ArtifactCore's BlockSums). XXH64 rather than
 * XXH3: its streaming state is a small plain struct (88 bytes, 8-byte aligned) that Swift
 * can hold and copy as a value, where XXH3's wants 64-byte alignment. XXH_INLINE_ALL renames
 * every symbol through macros Swift cannot see, hence these wrappers. */
#define XXH_INLINE_ALL
#include <stddef.h>
#include <stdint.h>
#include <xxhash.h>

typedef struct { XXH64_state_t state; } afs_xxh64_state;

static inline void afs_xxh64_reset(afs_xxh64_state *s) { XXH64_reset(&s->state, 0); }
static inline void afs_xxh64_update(afs_xxh64_state *s, const void *p, size_t n) { XXH64_update(&s->state, p, n); }
static inline uint64_t afs_xxh64_digest(const afs_xxh64_state *s) { return XXH64_digest(&s->state); }
static inline uint64_t afs_xxh64(const void *p, size_t n) { return XXH64(p, n, 0); }
#endif
