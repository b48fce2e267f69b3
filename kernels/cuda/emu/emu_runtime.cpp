// The host side of the CPU emulator: a fiber scheduler that runs a CUDA block's threads cooperatively, and
// the subset of the CUDA driver API and NVRTC that the CUDA backend binds, exported under the same names.
// The backend loads this library in place of libcuda.so.1 / libnvrtc.so.* (NR_CUDA_DRIVER=emulator or the
// "cuda:emu" device), so its launch code, memory management and every kernel source run where no GPU is.
//
// What it checks beyond running the kernels: launch limits (1024 threads a block, 48 KiB of dynamic shared
// memory unless raised with cuFuncSetAttribute, 227 KiB at most), warp shuffles in a warp with an exited or
// missing lane (undefined on a GPU), and barriers that not every thread reaches (deadlock). A failed check
// fails the launch with CUDA_ERROR_LAUNCH_FAILED and a message from nr_emu_last_error().
// What it cannot check: out-of-bounds accesses, data races (threads run one at a time), timing.
#include "../prelude.cuh"
#include "emu_register.h"

#include <sys/mman.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace nr_emu
{
thread_local Thread* current_thread = nullptr;
thread_local BlockState* current_block = nullptr;

namespace
{
// ------------------------------------------------------------------ context switch (x86-64 System V)
// nr_emu_switch(from, to): saves the callee-saved registers on the current stack, stores the stack pointer
// in *from, loads `to` and pops the registers saved there. A new fiber's stack is laid out so that the
// first switch "returns" into fiber_entry with the stack aligned as after a call.
extern "C" void nr_emu_switch(void** from, void* to);
asm(R"(
    .text
    .globl nr_emu_switch
    .type nr_emu_switch, @function
nr_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size nr_emu_switch, .-nr_emu_switch
)");

constexpr size_t StackBytes = 128 * 1024;
constexpr int MaxThreads = 1024;

struct Fiber
{
    void* sp = nullptr;
    char* stack = nullptr;
    Thread thread{};
    bool done = false;
};

struct Warp
{
    int size = 0;       // lanes that exist (blockDim may leave the last warp partial)
    int live = 0;       // lanes not exited
    int arrived = 0;
    unsigned long generation = 0;
    uint64_t slots[2][32];
};

struct Launch
{
    BlockState block{};
    std::vector<Fiber> fibers;
    std::vector<Warp> warps;
    void* schedulerSp = nullptr;
    int current = -1;
    int live = 0;
    int blockArrived = 0;
    unsigned long blockGeneration = 0;
    unsigned long progress = 0;
    bool failed = false;
    std::string error;
    Invoker invoker = nullptr;
    void* fn = nullptr;
    void** params = nullptr;
    std::vector<unsigned char> dynamicShared;
};

thread_local Launch* t_launch = nullptr;
thread_local std::vector<char*> t_stacks; // reused across launches on this host thread

std::mutex g_lastErrorLock;
std::string g_lastError;

void SetLastError(const std::string& message)
{
    std::lock_guard<std::mutex> lock(g_lastErrorLock);
    g_lastError = message;
}

Fiber& Me() { return t_launch->fibers[t_launch->current]; }

// Back to the scheduler; returns when the scheduler resumes this fiber.
void Yield()
{
    Launch* l = t_launch;
    nr_emu_switch(&l->fibers[l->current].sp, l->schedulerSp);
}

// Abandons the fiber: the scheduler sees `failed` and ends the launch without resuming anything.
[[noreturn]] void Fail(const std::string& message)
{
    Launch* l = t_launch;
    if (!l->failed)
    {
        l->failed = true;
        l->error = message;
    }
    for (;;) Yield();
}

void FiberEntry()
{
    Launch* l = t_launch;
    l->invoker(l->fn, l->params);
    Fiber& f = Me();
    f.done = true;
    l->live--;
    l->progress++;
    Warp& w = l->warps[f.thread.linear >> 5];
    w.live--;
    if (w.arrived > 0) Fail("a lane exited while its warp waits in a shuffle or __syncwarp (the full mask needs every lane)");
    // A barrier the others wait at counts exited threads as arrived.
    if (l->blockArrived > 0 && l->blockArrived == l->live)
    {
        l->blockArrived = 0;
        l->blockGeneration++;
    }
    for (;;) Yield(); // never resumed
}

char* StackFor(int i)
{
    while ((int)t_stacks.size() <= i)
    {
        void* p = mmap(nullptr, StackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) { std::fprintf(stderr, "nr emulator: cannot map a fiber stack\n"); std::abort(); }
        t_stacks.push_back((char*)p);
    }
    return t_stacks[i];
}

void InitFiber(Fiber& f)
{
    // Top of stack, 16-byte aligned: [top-8] a dummy return address for FiberEntry, [top-16] FiberEntry
    // (popped by ret), then the six callee-saved registers.
    uintptr_t top = ((uintptr_t)(f.stack + StackBytes)) & ~(uintptr_t)15;
    void** sp = (void**)top;
    *--sp = nullptr;
    *--sp = (void*)&FiberEntry;
    for (int r = 0; r < 6; r++) *--sp = nullptr;
    f.sp = sp;
    f.done = false;
}

// The order in which the scheduler resumes the threads of a block in each round (between two barriers every
// thread runs alone until its next rendezvous). Forward (thread 0 first) finds a thread that reads shared data
// before the thread that writes it has run; reverse and random orders find the other direction, so the tests run
// the kernels under all three: a missing barrier shows up as a wrong result in at least one of them.
thread_local int t_schedule = 0;          // 0 forward, 1 reverse, 2 random
thread_local uint64_t t_scheduleState = 0x9e3779b97f4a7c15ull;
thread_local std::vector<int> t_order;

void NextOrder(int n)
{
    t_order.resize(n);
    for (int i = 0; i < n; i++) t_order[i] = t_schedule == 1 ? n - 1 - i : i;
    if (t_schedule == 2)
        for (int i = n - 1; i > 0; i--)
        {
            t_scheduleState ^= t_scheduleState << 13;
            t_scheduleState ^= t_scheduleState >> 7;
            t_scheduleState ^= t_scheduleState << 17;
            int k = (int)(t_scheduleState % (uint64_t)(i + 1));
            std::swap(t_order[i], t_order[k]);
        }
}

// Runs one block to completion; false when a check failed (message in l.error).
bool RunBlock(Launch& l)
{
    int n = (int)l.fibers.size();
    for (int i = 0; i < n; i++) InitFiber(l.fibers[i]);
    l.live = n;
    l.blockArrived = 0;
    for (auto& w : l.warps)
    {
        w.live = w.size;
        w.arrived = 0;
    }
    l.block.dynamicShared = l.dynamicShared.empty() ? nullptr : l.dynamicShared.data();
    current_block = &l.block;
    while (l.live > 0)
    {
        unsigned long before = l.progress;
        NextOrder(n);
        for (int j = 0; j < n && !l.failed; j++)
        {
            int i = t_order[j];
            if (l.fibers[i].done) continue;
            l.current = i;
            current_thread = &l.fibers[i].thread;
            nr_emu_switch(&l.schedulerSp, l.fibers[i].sp);
        }
        if (l.failed) return false;
        if (l.live > 0 && l.progress == before)
        {
            l.error = "deadlock: some threads wait at a barrier or shuffle that the others never reach";
            return false;
        }
    }
    return true;
}
} // namespace

void sync_block()
{
    Launch* l = t_launch;
    unsigned long g = l->blockGeneration;
    l->blockArrived++;
    l->progress++;
    if (l->blockArrived == l->live)
    {
        l->blockArrived = 0;
        l->blockGeneration++;
        return;
    }
    while (l->blockGeneration == g) Yield();
}

static void WarpRendezvous(Warp& w)
{
    Launch* l = t_launch;
    if (w.size != 32) Fail("warp shuffle or __syncwarp in a partial warp (blockDim.x·y·z is not a multiple of 32)");
    if (w.live != w.size) Fail("warp shuffle or __syncwarp after a lane of the warp exited");
    unsigned long g = w.generation;
    w.arrived++;
    l->progress++;
    if (w.arrived == w.live)
    {
        w.arrived = 0;
        w.generation++;
        return;
    }
    while (w.generation == g) Yield();
}

const uint64_t* warp_exchange(uint64_t mine)
{
    Launch* l = t_launch;
    int linear = current_thread->linear;
    Warp& w = l->warps[linear >> 5];
    unsigned long g = w.generation;
    w.slots[g & 1][linear & 31] = mine;
    WarpRendezvous(w);
    return w.slots[g & 1];
}

void sync_warp()
{
    Launch* l = t_launch;
    WarpRendezvous(l->warps[current_thread->linear >> 5]);
}

// ------------------------------------------------------------------ kernel registry
namespace
{
struct KernelInfo
{
    std::string module;
    std::string name;
    void* fn;
    Invoker invoker;
    int parameterCount;
    int maxDynamicShared = 48 * 1024;
};

std::map<std::string, KernelInfo>& Registry()
{
    static std::map<std::string, KernelInfo> r;
    return r;
}
} // namespace

void register_kernel(const char* module, const char* name, void* fn, Invoker invoker, int parameterCount)
{
    auto& r = Registry();
    if (r.count(name))
    {
        std::fprintf(stderr, "nr emulator: kernel %s defined in %s and %s\n", name, r[name].module.c_str(), module);
        std::abort();
    }
    r[name] = KernelInfo{module, name, fn, invoker, parameterCount};
}
} // namespace nr_emu

// ====================================================================== the driver API subset
using namespace nr_emu;

typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;

enum : int
{
    CUDA_SUCCESS = 0,
    CUDA_ERROR_INVALID_VALUE = 1,
    CUDA_ERROR_OUT_OF_MEMORY = 2,
    CUDA_ERROR_NOT_INITIALIZED = 3,
    CUDA_ERROR_INVALID_DEVICE = 101,
    CUDA_ERROR_INVALID_IMAGE = 200,
    CUDA_ERROR_INVALID_HANDLE = 400,
    CUDA_ERROR_NOT_FOUND = 500,
    CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES = 701,
    CUDA_ERROR_LAUNCH_FAILED = 719,
};

namespace
{
bool g_initialized = false;
std::mutex g_memLock;
std::map<uintptr_t, size_t> g_allocations; // base → bytes
size_t g_allocatedBytes = 0;
constexpr size_t EmulatedTotalMemory = 16ull << 30;
int g_context = 1;

struct Module
{
    std::string name;
};

struct Event
{
    std::chrono::steady_clock::time_point at;
};

const char* ErrorName(CUresult e)
{
    switch (e)
    {
    case CUDA_SUCCESS: return "CUDA_SUCCESS";
    case CUDA_ERROR_INVALID_VALUE: return "CUDA_ERROR_INVALID_VALUE";
    case CUDA_ERROR_OUT_OF_MEMORY: return "CUDA_ERROR_OUT_OF_MEMORY";
    case CUDA_ERROR_NOT_INITIALIZED: return "CUDA_ERROR_NOT_INITIALIZED";
    case CUDA_ERROR_INVALID_DEVICE: return "CUDA_ERROR_INVALID_DEVICE";
    case CUDA_ERROR_INVALID_IMAGE: return "CUDA_ERROR_INVALID_IMAGE";
    case CUDA_ERROR_INVALID_HANDLE: return "CUDA_ERROR_INVALID_HANDLE";
    case CUDA_ERROR_NOT_FOUND: return "CUDA_ERROR_NOT_FOUND";
    case CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES: return "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES";
    case CUDA_ERROR_LAUNCH_FAILED: return "CUDA_ERROR_LAUNCH_FAILED";
    default: return nullptr;
    }
}

const char* ErrorText(CUresult e)
{
    switch (e)
    {
    case CUDA_SUCCESS: return "no error";
    case CUDA_ERROR_INVALID_VALUE: return "invalid argument";
    case CUDA_ERROR_OUT_OF_MEMORY: return "out of memory";
    case CUDA_ERROR_NOT_INITIALIZED: return "initialization error";
    case CUDA_ERROR_INVALID_DEVICE: return "invalid device ordinal";
    case CUDA_ERROR_INVALID_IMAGE: return "device kernel image is invalid";
    case CUDA_ERROR_INVALID_HANDLE: return "invalid resource handle";
    case CUDA_ERROR_NOT_FOUND: return "named symbol not found";
    case CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES: return "too many resources requested for launch";
    case CUDA_ERROR_LAUNCH_FAILED: return "unspecified launch failure (see nr_emu_last_error)";
    default: return nullptr;
    }
}

bool Known(CUdeviceptr p)
{
    std::lock_guard<std::mutex> lock(g_memLock);
    auto it = g_allocations.upper_bound((uintptr_t)p);
    if (it == g_allocations.begin()) return false;
    --it;
    return (uintptr_t)p < it->first + it->second;
}
} // namespace

#define NR_EXPORT extern "C" __attribute__((visibility("default")))

NR_EXPORT const char* nr_emu_last_error()
{
    static thread_local std::string copy;
    std::lock_guard<std::mutex> lock(g_lastErrorLock);
    copy = g_lastError;
    return copy.c_str();
}

// Emulator only: the thread order of the launches made by the calling host thread (0 forward, 1 reverse,
// 2 random from the seed).
NR_EXPORT void nr_emu_set_schedule(int mode, unsigned long long seed)
{
    t_schedule = mode;
    t_scheduleState = seed ? seed : 0x9e3779b97f4a7c15ull;
}

NR_EXPORT CUresult cuInit(unsigned flags)
{
    if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
    g_initialized = true;
    return CUDA_SUCCESS;
}

NR_EXPORT CUresult cuDriverGetVersion(int* version)
{
    if (!version) return CUDA_ERROR_INVALID_VALUE;
    *version = 13000;
    return CUDA_SUCCESS;
}

NR_EXPORT CUresult cuDeviceGetCount(int* count)
{
    if (!g_initialized) return CUDA_ERROR_NOT_INITIALIZED;
    *count = 1;
    return CUDA_SUCCESS;
}

NR_EXPORT CUresult cuDeviceGet(CUdevice* device, int ordinal)
{
    if (!g_initialized) return CUDA_ERROR_NOT_INITIALIZED;
    if (ordinal != 0) return CUDA_ERROR_INVALID_DEVICE;
    *device = 0;
    return CUDA_SUCCESS;
}

NR_EXPORT CUresult cuDeviceGetName(char* name, int length, CUdevice device)
{
    if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
    std::snprintf(name, (size_t)length, "%s", "NativeReasoner CUDA emulator (CPU)");
    return CUDA_SUCCESS;
}

NR_EXPORT CUresult cuDeviceTotalMem_v2(size_t* bytes, CUdevice device)
{
    if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
    *bytes = EmulatedTotalMemory;
    return CUDA_SUCCESS;
}

NR_EXPORT CUresult cuDeviceGetAttribute(int* value, int attribute, CUdevice device)
{
    if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
    switch (attribute)
    {
    case 1: *value = 1024; break;            // MAX_THREADS_PER_BLOCK
    case 2: *value = 1024; break;            // MAX_BLOCK_DIM_X
    case 3: *value = 1024; break;            // MAX_BLOCK_DIM_Y
    case 4: *value = 64; break;              // MAX_BLOCK_DIM_Z
    case 5: *value = 2147483647; break;      // MAX_GRID_DIM_X
    case 6: *value = 65535; break;           // MAX_GRID_DIM_Y
    case 7: *value = 65535; break;           // MAX_GRID_DIM_Z
    case 8: *value = 48 * 1024; break;       // MAX_SHARED_MEMORY_PER_BLOCK
    case 10: *value = 32; break;             // WARP_SIZE
    case 13: *value = 1000000; break;        // CLOCK_RATE (kHz)
    case 16: *value = 4; break;              // MULTIPROCESSOR_COUNT
    case 36: *value = 1000000; break;        // MEMORY_CLOCK_RATE (kHz)
    case 37: *value = 64; break;             // GLOBAL_MEMORY_BUS_WIDTH
    case 38: *value = 4 * 1024 * 1024; break; // L2_CACHE_SIZE
    case 39: *value = 2048; break;           // MAX_THREADS_PER_MULTIPROCESSOR
    case 75: *value = 9; break;              // COMPUTE_CAPABILITY_MAJOR
    case 76: *value = 0; break;              // COMPUTE_CAPABILITY_MINOR
    case 81: *value = 228 * 1024; break;     // MAX_SHARED_MEMORY_PER_MULTIPROCESSOR
    case 97: *value = 227 * 1024; break;     // MAX_SHARED_MEMORY_PER_BLOCK_OPTIN
    default: *value = 0; break;
    }
    return CUDA_SUCCESS;
}

NR_EXPORT CUresult cuDevicePrimaryCtxRetain(void** context, CUdevice device)
{
    if (!g_initialized) return CUDA_ERROR_NOT_INITIALIZED;
    if (device != 0) return CUDA_ERROR_INVALID_DEVICE;
    *context = &g_context;
    return CUDA_SUCCESS;
}

NR_EXPORT CUresult cuDevicePrimaryCtxRelease_v2(CUdevice device) { return device == 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE; }
NR_EXPORT CUresult cuCtxSetCurrent(void* context) { return context == nullptr || context == &g_context ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE; }
NR_EXPORT CUresult cuCtxSynchronize() { return CUDA_SUCCESS; }

NR_EXPORT CUresult cuGetErrorName(CUresult error, const char** name)
{
    const char* n = ErrorName(error);
    if (!n) { *name = nullptr; return CUDA_ERROR_INVALID_VALUE; }
    *name = n;
    return CUDA_SUCCESS;
}

NR_EXPORT CUresult cuGetErrorString(CUresult error, const char** text)
{
    const char* t = ErrorText(error);
    if (!t) { *text = nullptr; return CUDA_ERROR_INVALID_VALUE; }
    *text = t;
    return CUDA_SUCCESS;
}

// ---------------------------------------------------------------- memory
NR_EXPORT CUresult cuMemAlloc_v2(CUdeviceptr* p, size_t bytes)
{
    if (!g_initialized) return CUDA_ERROR_NOT_INITIALIZED;
    if (bytes == 0) return CUDA_ERROR_INVALID_VALUE;
    size_t rounded = (bytes + 255) / 256 * 256;
    void* m = std::aligned_alloc(256, rounded);
    if (!m) return CUDA_ERROR_OUT_OF_MEMORY;
    // Fresh device memory is not zero on a GPU: fill it with a NaN pattern so a kernel that reads before
    // writing shows up in the tests.
    std::memset(m, 0xff, rounded);
    std::lock_guard<std::mutex> lock(g_memLock);
    g_allocations[(uintptr_t)m] = rounded;
    g_allocatedBytes += rounded;
    *p = (CUdeviceptr)(uintptr_t)m;
    return CUDA_SUCCESS;
}

NR_EXPORT CUresult cuMemFree_v2(CUdeviceptr p)
{
    std::lock_guard<std::mutex> lock(g_memLock);
    auto it = g_allocations.find((uintptr_t)p);
    if (it == g_allocations.end()) return CUDA_ERROR_INVALID_VALUE;
    g_allocatedBytes -= it->second;
    g_allocations.erase(it);
    std::free((void*)(uintptr_t)p);
    return CUDA_SUCCESS;
}

NR_EXPORT CUresult cuMemGetInfo_v2(size_t* freeBytes, size_t* totalBytes)
{
    std::lock_guard<std::mutex> lock(g_memLock);
    *totalBytes = EmulatedTotalMemory;
    *freeBytes = EmulatedTotalMemory > g_allocatedBytes ? EmulatedTotalMemory - g_allocatedBytes : 0;
    return CUDA_SUCCESS;
}

NR_EXPORT CUresult cuMemAllocHost_v2(void** p, size_t bytes)
{
    *p = std::aligned_alloc(4096, (bytes + 4095) / 4096 * 4096);
    return *p ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

NR_EXPORT CUresult cuMemFreeHost(void* p)
{
    std::free(p);
    return CUDA_SUCCESS;
}

NR_EXPORT CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void* src, size_t bytes)
{
    if (bytes && !Known(dst)) return CUDA_ERROR_INVALID_VALUE;
    std::memcpy((void*)(uintptr_t)dst, src, bytes);
    return CUDA_SUCCESS;
}

NR_EXPORT CUresult cuMemcpyDtoH_v2(void* dst, CUdeviceptr src, size_t bytes)
{
    if (bytes && !Known(src)) return CUDA_ERROR_INVALID_VALUE;
    std::memcpy(dst, (const void*)(uintptr_t)src, bytes);
    return CUDA_SUCCESS;
}

NR_EXPORT CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t bytes)
{
    if (bytes && (!Known(dst) || !Known(src))) return CUDA_ERROR_INVALID_VALUE;
    std::memmove((void*)(uintptr_t)dst, (const void*)(uintptr_t)src, bytes);
    return CUDA_SUCCESS;
}

NR_EXPORT CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void* src, size_t bytes, void*) { return cuMemcpyHtoD_v2(dst, src, bytes); }
NR_EXPORT CUresult cuMemcpyDtoHAsync_v2(void* dst, CUdeviceptr src, size_t bytes, void*) { return cuMemcpyDtoH_v2(dst, src, bytes); }
NR_EXPORT CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t bytes, void*) { return cuMemcpyDtoD_v2(dst, src, bytes); }

NR_EXPORT CUresult cuMemsetD8_v2(CUdeviceptr dst, unsigned char value, size_t count)
{
    if (count && !Known(dst)) return CUDA_ERROR_INVALID_VALUE;
    std::memset((void*)(uintptr_t)dst, value, count);
    return CUDA_SUCCESS;
}

NR_EXPORT CUresult cuMemsetD32_v2(CUdeviceptr dst, unsigned value, size_t count)
{
    if (count && !Known(dst)) return CUDA_ERROR_INVALID_VALUE;
    unsigned* p = (unsigned*)(uintptr_t)dst;
    for (size_t i = 0; i < count; i++) p[i] = value;
    return CUDA_SUCCESS;
}

NR_EXPORT CUresult cuMemsetD8Async(CUdeviceptr dst, unsigned char value, size_t count, void*) { return cuMemsetD8_v2(dst, value, count); }
NR_EXPORT CUresult cuMemsetD32Async(CUdeviceptr dst, unsigned value, size_t count, void*) { return cuMemsetD32_v2(dst, value, count); }

// ---------------------------------------------------------------- streams and events (all work is synchronous)
NR_EXPORT CUresult cuStreamCreate(void** stream, unsigned)
{
    static int s_stream;
    *stream = &s_stream;
    return CUDA_SUCCESS;
}
NR_EXPORT CUresult cuStreamDestroy_v2(void*) { return CUDA_SUCCESS; }
NR_EXPORT CUresult cuStreamSynchronize(void*) { return CUDA_SUCCESS; }

NR_EXPORT CUresult cuEventCreate(void** event, unsigned)
{
    *event = new Event();
    return CUDA_SUCCESS;
}
NR_EXPORT CUresult cuEventDestroy_v2(void* event)
{
    delete (Event*)event;
    return CUDA_SUCCESS;
}
NR_EXPORT CUresult cuEventRecord(void* event, void*)
{
    ((Event*)event)->at = std::chrono::steady_clock::now();
    return CUDA_SUCCESS;
}
NR_EXPORT CUresult cuEventSynchronize(void*) { return CUDA_SUCCESS; }
NR_EXPORT CUresult cuEventElapsedTime_v2(float* ms, void* start, void* end)
{
    *ms = std::chrono::duration<float, std::milli>(((Event*)end)->at - ((Event*)start)->at).count();
    return CUDA_SUCCESS;
}
NR_EXPORT CUresult cuEventElapsedTime(float* ms, void* start, void* end) { return cuEventElapsedTime_v2(ms, start, end); }

// ---------------------------------------------------------------- modules and launches
static const char ImageMagic[] = "NR-CUDA-EMULATOR-IMAGE:";

NR_EXPORT CUresult cuModuleLoadData(void** module, const void* image)
{
    const char* s = (const char*)image;
    if (std::strncmp(s, ImageMagic, sizeof ImageMagic - 1) != 0) return CUDA_ERROR_INVALID_IMAGE;
    *module = new Module{std::string(s + sizeof ImageMagic - 1)};
    return CUDA_SUCCESS;
}

NR_EXPORT CUresult cuModuleUnload(void* module)
{
    delete (Module*)module;
    return CUDA_SUCCESS;
}

NR_EXPORT CUresult cuModuleGetFunction(void** function, void* module, const char* name)
{
    auto& r = Registry();
    auto it = r.find(name);
    if (it == r.end() || it->second.module != ((Module*)module)->name) return CUDA_ERROR_NOT_FOUND;
    *function = &it->second;
    return CUDA_SUCCESS;
}

NR_EXPORT CUresult cuFuncSetAttribute(void* function, int attribute, int value)
{
    auto* k = (KernelInfo*)function;
    if (attribute == 8) // MAX_DYNAMIC_SHARED_SIZE_BYTES
    {
        if (value < 0 || value > 227 * 1024) return CUDA_ERROR_INVALID_VALUE;
        k->maxDynamicShared = value;
        return CUDA_SUCCESS;
    }
    return CUDA_SUCCESS;
}

NR_EXPORT CUresult cuFuncGetAttribute(int* value, int attribute, void* function)
{
    auto* k = (KernelInfo*)function;
    switch (attribute)
    {
    case 0: *value = 1024; break;                  // MAX_THREADS_PER_BLOCK
    case 8: *value = k->maxDynamicShared; break;  // MAX_DYNAMIC_SHARED_SIZE_BYTES
    default: *value = 0; break;
    }
    return CUDA_SUCCESS;
}

// The .NET JIT's optimised (tier-1) code uses AVX/AVX-512 and may call into native code with the upper halves
// of the vector registers dirty. The kernels here are compiled for baseline x86-64 (SSE encodings), and with
// dirty upper state every SSE instruction pays the AVX-SSE transition penalty: fp32 GEMM kernels ran ~40×
// slower once the launching code had tiered up. vzeroupper (where the CPU has AVX) clears that state.
static void ClearUpperVectorState()
{
    static const bool avx = __builtin_cpu_supports("avx");
    if (avx) __asm__ volatile("vzeroupper");
}

NR_EXPORT CUresult cuLaunchKernel(void* function, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
    unsigned sharedBytes, void* stream, void** params, void** extra)
{
    (void)stream;
    ClearUpperVectorState();
    auto* k = (KernelInfo*)function;
    if (!k || !params || extra) return CUDA_ERROR_INVALID_VALUE;
    unsigned long long threads = (unsigned long long)bx * by * bz;
    if (gx == 0 || gy == 0 || gz == 0 || threads == 0 || gy > 65535 || gz > 65535 || bz > 64) return CUDA_ERROR_INVALID_VALUE;
    if (threads > (unsigned long long)MaxThreads) return CUDA_ERROR_INVALID_VALUE;
    if ((int)sharedBytes > k->maxDynamicShared)
    {
        SetLastError(k->name + ": " + std::to_string(sharedBytes) + " bytes of dynamic shared memory, limit " +
            std::to_string(k->maxDynamicShared) + " (raise it with cuFuncSetAttribute)");
        return CUDA_ERROR_INVALID_VALUE;
    }

    Launch l;
    l.invoker = k->invoker;
    l.fn = k->fn;
    l.params = params;
    l.block.size = uint3{bx, by, bz};
    l.block.grid = uint3{gx, gy, gz};
    l.dynamicShared.assign(sharedBytes, 0xff);
    int n = (int)threads;
    l.fibers.resize(n);
    for (int i = 0; i < n; i++)
    {
        l.fibers[i].stack = StackFor(i);
        l.fibers[i].thread.linear = i;
        l.fibers[i].thread.idx = uint3{(unsigned)(i % bx), (unsigned)((i / bx) % by), (unsigned)(i / (bx * by))};
    }
    l.warps.resize((n + 31) / 32);
    for (int w = 0; w < (int)l.warps.size(); w++) l.warps[w].size = std::min(32, n - w * 32);

    Launch* outer = t_launch;
    Thread* outerThread = current_thread;
    BlockState* outerBlock = current_block;
    t_launch = &l;
    bool ok = true;
    for (unsigned z = 0; z < gz && ok; z++)
        for (unsigned y = 0; y < gy && ok; y++)
            for (unsigned x = 0; x < gx && ok; x++)
            {
                l.block.index = uint3{x, y, z};
                ok = RunBlock(l);
                if (!ok)
                    l.error = k->name + " block (" + std::to_string(x) + "," + std::to_string(y) + "," + std::to_string(z) +
                        "): " + l.error;
            }
    t_launch = outer;
    current_thread = outerThread;
    current_block = outerBlock;
    if (!ok)
    {
        SetLastError(l.error);
        return CUDA_ERROR_LAUNCH_FAILED;
    }
    return CUDA_SUCCESS;
}

// ====================================================================== the NVRTC subset
// "Compiling" checks that the emulator holds the program's kernels (compiled ahead of time from the same
// .cu files, named by the program name) and yields an image that cuModuleLoadData recognises.
typedef int nvrtcResult;
enum : int
{
    NVRTC_SUCCESS = 0,
    NVRTC_ERROR_INVALID_INPUT = 3,
    NVRTC_ERROR_INVALID_PROGRAM = 4,
    NVRTC_ERROR_COMPILATION = 6,
};

namespace
{
struct Program
{
    std::string name;
    std::string log;
    std::string image;
};
} // namespace

NR_EXPORT const char* nvrtcGetErrorString(nvrtcResult r)
{
    switch (r)
    {
    case NVRTC_SUCCESS: return "NVRTC_SUCCESS";
    case NVRTC_ERROR_INVALID_INPUT: return "NVRTC_ERROR_INVALID_INPUT";
    case NVRTC_ERROR_INVALID_PROGRAM: return "NVRTC_ERROR_INVALID_PROGRAM";
    case NVRTC_ERROR_COMPILATION: return "NVRTC_ERROR_COMPILATION";
    default: return "NVRTC_ERROR_UNKNOWN";
    }
}

NR_EXPORT nvrtcResult nvrtcVersion(int* major, int* minor)
{
    *major = 0;
    *minor = 1;
    return NVRTC_SUCCESS;
}

NR_EXPORT nvrtcResult nvrtcCreateProgram(void** program, const char* source, const char* name, int, const char* const*, const char* const*)
{
    if (!program || !source || !name) return NVRTC_ERROR_INVALID_INPUT;
    *program = new Program{name, "", ""};
    return NVRTC_SUCCESS;
}

NR_EXPORT nvrtcResult nvrtcDestroyProgram(void** program)
{
    if (!program) return NVRTC_ERROR_INVALID_PROGRAM;
    delete (Program*)*program;
    *program = nullptr;
    return NVRTC_SUCCESS;
}

NR_EXPORT nvrtcResult nvrtcCompileProgram(void* program, int, const char* const*)
{
    auto* p = (Program*)program;
    if (!p) return NVRTC_ERROR_INVALID_PROGRAM;
    for (auto& kv : Registry())
        if (kv.second.module == p->name)
        {
            p->image = std::string(ImageMagic) + p->name;
            p->log = "";
            return NVRTC_SUCCESS;
        }
    p->log = "nr emulator: no kernels of '" + p->name + "' were compiled into the emulator (rebuild it: kernels/cuda/emu/build.sh)";
    return NVRTC_ERROR_COMPILATION;
}

NR_EXPORT nvrtcResult nvrtcGetProgramLogSize(void* program, size_t* size)
{
    *size = ((Program*)program)->log.size() + 1;
    return NVRTC_SUCCESS;
}

NR_EXPORT nvrtcResult nvrtcGetProgramLog(void* program, char* log)
{
    auto* p = (Program*)program;
    std::memcpy(log, p->log.c_str(), p->log.size() + 1);
    return NVRTC_SUCCESS;
}

NR_EXPORT nvrtcResult nvrtcGetCUBINSize(void* program, size_t* size)
{
    *size = ((Program*)program)->image.size() + 1;
    return NVRTC_SUCCESS;
}

NR_EXPORT nvrtcResult nvrtcGetCUBIN(void* program, char* cubin)
{
    auto* p = (Program*)program;
    std::memcpy(cubin, p->image.c_str(), p->image.size() + 1);
    return NVRTC_SUCCESS;
}

NR_EXPORT nvrtcResult nvrtcGetPTXSize(void* program, size_t* size) { return nvrtcGetCUBINSize(program, size); }
NR_EXPORT nvrtcResult nvrtcGetPTX(void* program, char* ptx) { return nvrtcGetCUBIN(program, ptx); }
