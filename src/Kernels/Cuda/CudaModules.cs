// Source: the CUDA Driver API reference (cuInit, cuModuleLoadData, cuLaunchKernel, events) and NVRTC.
using System.Collections.Concurrent;
using System.Reflection;
using System.Security.Cryptography;
using System.Text;

namespace NativeReasoner.Kernels.Cuda;

/// <summary>
/// The kernel sources of kernels/cuda (embedded in this assembly), compiled on first use with NVRTC to a
/// CUBIN for the device's own sm_XX, loaded as modules, and their functions looked up by extern "C" name.
/// Compiled images are cached on disk (NR_CUDA_CACHE, else ~/.cache/nativereasoner/cuda) under a name made
/// of the SHA-256 of the sources and options, the arch and the NVRTC version, written to a temporary file and
/// renamed so a crash never leaves a torn image.
/// </summary>
internal sealed unsafe class CudaModules
{
    public const string CacheVariable = "NR_CUDA_CACHE";
    private const string ResourcePrefix = "kernels/cuda/";

    private readonly CudaBackend _backend;
    private readonly ConcurrentDictionary<string, IntPtr> _modules = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string File, string Kernel), IntPtr> _functions = new();
    private readonly object _compileLock = new();

    public CudaModules(CudaBackend backend) => _backend = backend;

    /// <summary>The embedded sources: file name ("gemm.cu", "prelude.cuh") → text.</summary>
    public static IReadOnlyDictionary<string, string> Sources => s_sources.Value;

    private static readonly Lazy<Dictionary<string, string>> s_sources = new(() =>
    {
        var asm = typeof(CudaModules).Assembly;
        var d = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var name in asm.GetManifestResourceNames())
        {
            if (!name.StartsWith(ResourcePrefix, StringComparison.Ordinal)) continue;
            using var s = asm.GetManifestResourceStream(name)!;
            using var r = new StreamReader(s, Encoding.UTF8);
            d[name[ResourcePrefix.Length..]] = r.ReadToEnd();
        }
        return d;
    });

    /// <summary>NVRTC options: the device's arch (sm_90a on Hopper, for wgmma/setmaxnreg), C++17, no fast math.</summary>
    public string[] Options => [$"--gpu-architecture={ArchOption}", "-std=c++17", "-lineinfo", "-DNR_SM=" + (_backend.ComputeMajor * 10 + _backend.ComputeMinor)];

    private string ArchOption => _backend.ComputeMajor == 9 && _backend.ComputeMinor == 0 ? "sm_90a" : _backend.Arch;

    /// <summary>The function <paramref name="kernel"/> of <paramref name="file"/>, compiling and loading the module once.</summary>
    public IntPtr Function(string file, string kernel)
    {
        if (_functions.TryGetValue((file, kernel), out var f)) return f;
        IntPtr module = Module(file);
        _backend.MakeCurrent();
        IntPtr fn;
        byte[] name = Encoding.UTF8.GetBytes(kernel + "\0");
        fixed (byte* n = name)
        {
            int r = _backend.Api.cuModuleGetFunction(&fn, module, n);
            if (r != 0) throw new CudaException($"cuModuleGetFunction({file}, {kernel})", r, _backend.Api.Describe(r));
        }
        _functions[(file, kernel)] = fn;
        return fn;
    }

    private IntPtr Module(string file)
    {
        if (_modules.TryGetValue(file, out var m)) return m;
        lock (_compileLock)
        {
            if (_modules.TryGetValue(file, out m)) return m;
            byte[] image = Image(file);
            _backend.MakeCurrent();
            IntPtr module;
            fixed (byte* p = image) _backend.Check(_backend.Api.cuModuleLoadData(&module, p));
            _modules[file] = module;
            return module;
        }
    }

    /// <summary>The CUBIN of a file: from the disk cache, else compiled by NVRTC (and cached).</summary>
    private byte[] Image(string file)
    {
        if (!Sources.TryGetValue(file, out var source))
            throw new ArgumentException($"no kernel source '{file}' is embedded (known: {string.Join(", ", Sources.Keys.Order())})");
        string options = string.Join(' ', Options);
        string nvrtcVersion = _backend.Nvrtc.Version();
        bool cacheable = _backend.Kind == Native.CudaRuntimeKind.Gpu;
        string? cachePath = null;
        if (cacheable)
        {
            var hash = SHA256.Create();
            var all = new StringBuilder().Append(options).Append('\n').Append(nvrtcVersion).Append('\n');
            foreach (var kv in Sources.OrderBy(kv => kv.Key, StringComparer.Ordinal)) all.Append(kv.Key).Append('\n').Append(kv.Value);
            string digest = Convert.ToHexString(hash.ComputeHash(Encoding.UTF8.GetBytes(all.ToString())))[..24].ToLowerInvariant();
            cachePath = Path.Combine(CacheDirectory(), $"{Path.GetFileNameWithoutExtension(file)}-{digest}-{ArchOption}-nvrtc{nvrtcVersion}.cubin");
            if (File.Exists(cachePath)) return File.ReadAllBytes(cachePath);
        }
        byte[] image = Compile(file, source);
        if (cachePath != null)
        {
            try
            {
                Directory.CreateDirectory(Path.GetDirectoryName(cachePath)!);
                string tmp = cachePath + "." + Environment.ProcessId + ".tmp";
                File.WriteAllBytes(tmp, image);
                File.Move(tmp, cachePath, overwrite: true);
            }
            catch (IOException)
            {
                // A read-only or full cache directory only costs a recompile next time.
            }
            catch (UnauthorizedAccessException)
            {
            }
        }
        return image;
    }

    public static string CacheDirectory()
    {
        string? env = Environment.GetEnvironmentVariable(CacheVariable);
        if (!string.IsNullOrWhiteSpace(env)) return env;
        string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        if (string.IsNullOrEmpty(home)) home = Path.GetTempPath();
        return Path.Combine(home, ".cache", "nativereasoner", "cuda");
    }

    private byte[] Compile(string file, string source)
    {
        var nv = _backend.Nvrtc;
        // Every header of kernels/cuda is handed to NVRTC by name, so `#include "prelude.cuh"` resolves.
        var headers = Sources.Where(kv => kv.Key.EndsWith(".cuh", StringComparison.Ordinal)).ToArray();
        var pinned = new List<IntPtr>();
        IntPtr Utf8(string s)
        {
            var bytes = Encoding.UTF8.GetBytes(s + "\0");
            IntPtr p = System.Runtime.InteropServices.Marshal.AllocHGlobal(bytes.Length);
            System.Runtime.InteropServices.Marshal.Copy(bytes, 0, p, bytes.Length);
            pinned.Add(p);
            return p;
        }
        try
        {
            byte** headerSources = stackalloc byte*[Math.Max(1, headers.Length)];
            byte** headerNames = stackalloc byte*[Math.Max(1, headers.Length)];
            for (int i = 0; i < headers.Length; i++)
            {
                headerSources[i] = (byte*)Utf8(headers[i].Value);
                headerNames[i] = (byte*)Utf8(headers[i].Key);
            }
            IntPtr program;
            int r = nv.nvrtcCreateProgram(&program, (byte*)Utf8(source), (byte*)Utf8(file), headers.Length, headerSources, headerNames);
            if (r != 0) throw new CudaException("nvrtcCreateProgram", r, nv.Describe(r));
            try
            {
                var opts = Options;
                byte** o = stackalloc byte*[opts.Length];
                for (int i = 0; i < opts.Length; i++) o[i] = (byte*)Utf8(opts[i]);
                r = nv.nvrtcCompileProgram(program, opts.Length, o);
                nuint logSize;
                string log = "";
                if (nv.nvrtcGetProgramLogSize(program, &logSize) == 0 && logSize > 1)
                {
                    var buf = new byte[(int)logSize];
                    fixed (byte* b = buf) nv.nvrtcGetProgramLog(program, b);
                    log = Encoding.UTF8.GetString(buf, 0, buf.Length - 1);
                }
                if (r != 0) throw new CudaCompileException(file, string.Join(' ', opts), log.Length > 0 ? log : nv.Describe(r));
                nuint size;
                r = nv.nvrtcGetCUBINSize(program, &size);
                if (r != 0) throw new CudaException("nvrtcGetCUBINSize", r, nv.Describe(r));
                var image = new byte[(int)size];
                fixed (byte* b = image)
                {
                    r = nv.nvrtcGetCUBIN(program, b);
                    if (r != 0) throw new CudaException("nvrtcGetCUBIN", r, nv.Describe(r));
                }
                return image;
            }
            finally
            {
                nv.nvrtcDestroyProgram(&program);
            }
        }
        finally
        {
            foreach (var p in pinned) System.Runtime.InteropServices.Marshal.FreeHGlobal(p);
        }
    }

    /// <summary>Compiles every embedded .cu file now (the GPU check does this first, so compile errors come before anything runs).</summary>
    public void CompileAll()
    {
        foreach (var f in Sources.Keys.Where(k => k.EndsWith(".cu", StringComparison.Ordinal)).Order()) Module(f);
    }

    /// <summary>
    /// Compiles and loads every embedded .cu file, each timed, going on after a failure: one result per file, the
    /// error text (NVRTC's log) where it failed. A file already loaded counts its (zero) lookup time; one in the disk
    /// cache, its load time.
    /// </summary>
    public IReadOnlyList<KernelCompileResult> CompileAllTimed()
    {
        var results = new List<KernelCompileResult>();
        foreach (var f in Sources.Keys.Where(k => k.EndsWith(".cu", StringComparison.Ordinal)).Order())
        {
            long t0 = System.Diagnostics.Stopwatch.GetTimestamp();
            string? error = null;
            try { Module(f); }
            catch (Exception e) when (e is CudaException or CudaCompileException) { error = e.Message; }
            double ms = System.Diagnostics.Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
            results.Add(new KernelCompileResult(f, ms, error));
        }
        return results;
    }

    public void UnloadAll()
    {
        foreach (var m in _modules.Values) _backend.Api.cuModuleUnload(m);
        _modules.Clear();
        _functions.Clear();
    }
}

/// <summary>One kernel file's compile and load: its time, and NVRTC's or the driver's error when it failed.</summary>
public sealed record KernelCompileResult(string File, double Milliseconds, string? Error)
{
    public bool Ok => Error == null;
}
