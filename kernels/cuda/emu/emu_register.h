// Registers a kernel of a .cu file with the emulator under its extern "C" name, with an invoker that
// unpacks cuLaunchKernel's kernelParams (an array of pointers to the argument values) into a typed call.
#pragma once
#include <cstddef>
#include <type_traits>
#include <utility>

namespace nr_emu
{
using Invoker = void (*)(void* fn, void** params);
void register_kernel(const char* module, const char* name, void* fn, Invoker invoker, int parameterCount);

template <class... A> struct Invoke
{
    template <std::size_t... I> static void Call(void* fn, void** p, std::index_sequence<I...>)
    {
        reinterpret_cast<void (*)(A...)>(fn)(*static_cast<std::remove_cv_t<std::remove_reference_t<A>>*>(p[I])...);
    }
    static void Run(void* fn, void** p) { Call(fn, p, std::index_sequence_for<A...>{}); }
};

template <class... A> int Register(const char* module, const char* name, void (*fn)(A...))
{
    register_kernel(module, name, reinterpret_cast<void*>(fn), &Invoke<A...>::Run, (int)sizeof...(A));
    return 0;
}
}

#define NR_EMU_REGISTER(module, name) static int nr_emu_registered_##name = nr_emu::Register(module, #name, &name);
