/* A stand-in for libnccl.so.2 with nccl.h's signatures: it records the arguments of the last calls, so the tests
   check what NcclProcessGroup passes (the 128-byte unique id by value, pointers, counts, types, the stream) on a
   machine without a GPU. Built by tests/Distributed/NcclMarshallingTests.cs with the system C compiler. */
#include <stddef.h>
#include <string.h>

typedef struct { char internal[128]; } ncclUniqueId;

unsigned char stub_id[128];
int stub_nranks = -1, stub_rank = -1, stub_group_starts, stub_group_ends, stub_sends, stub_recvs;
int stub_dtype = -1, stub_op = -1, stub_root = -1, stub_peer = -1, stub_color = -99, stub_key = -99;
long long stub_count = -1, stub_send_bytes, stub_recv_bytes;
const void *stub_sendbuff, *stub_recvbuff, *stub_comm, *stub_stream;

int ncclGetVersion(int *v) { *v = 22005; return 0; }
int ncclGetUniqueId(ncclUniqueId *id) { for (int i = 0; i < 128; i++) id->internal[i] = (char)(i * 7 + 3); return 0; }
int ncclCommInitRank(void **comm, int nranks, ncclUniqueId id, int rank)
{
    memcpy(stub_id, id.internal, 128);
    stub_nranks = nranks;
    stub_rank = rank;
    *comm = (void *)0x1234;
    return 0;
}
int ncclCommSplit(void *comm, int color, int key, void **newcomm, void *config)
{
    stub_comm = comm; stub_color = color; stub_key = key;
    *newcomm = color == -1 ? NULL : (void *)0x5678;
    return config == NULL ? 0 : 4;
}
int ncclCommCount(const void *comm, int *count) { *count = stub_nranks; return comm ? 0 : 4; }
int ncclCommUserRank(const void *comm, int *rank) { *rank = stub_rank; return comm ? 0 : 4; }
int ncclCommDestroy(void *comm) { return 0; }
int ncclCommAbort(void *comm) { return 0; }
const char *ncclGetErrorString(int code) { return "stub error"; }
static int record(const void *s, const void *r, size_t n, int t, int op, const void *c, const void *st)
{
    stub_sendbuff = s; stub_recvbuff = r; stub_count = (long long)n; stub_dtype = t; stub_op = op;
    stub_comm = c; stub_stream = st;
    return 0;
}
int ncclAllReduce(const void *s, void *r, size_t n, int t, int op, void *c, void *st) { return record(s, r, n, t, op, c, st); }
int ncclBroadcast(const void *s, void *r, size_t n, int t, int root, void *c, void *st) { stub_root = root; return record(s, r, n, t, -1, c, st); }
int ncclAllGather(const void *s, void *r, size_t n, int t, void *c, void *st) { return record(s, r, n, t, -1, c, st); }
int ncclReduceScatter(const void *s, void *r, size_t n, int t, int op, void *c, void *st) { return record(s, r, n, t, op, c, st); }
int ncclSend(const void *s, size_t n, int t, int peer, void *c, void *st)
{
    stub_sends++; stub_send_bytes += (long long)n; stub_peer = peer;
    return record(s, NULL, n, t, -1, c, st);
}
int ncclRecv(void *r, size_t n, int t, int peer, void *c, void *st)
{
    stub_recvs++; stub_recv_bytes += (long long)n; stub_peer = peer;
    return record(NULL, r, n, t, -1, c, st);
}
int ncclGroupStart(void) { stub_group_starts++; return 0; }
int ncclGroupEnd(void) { stub_group_ends++; return 0; }
