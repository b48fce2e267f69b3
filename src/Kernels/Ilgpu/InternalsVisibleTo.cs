// ILGPU compiles kernels into a dynamic assembly named "ILGPURuntime"; the kernels' argument structs
// (Layout8, GemmArgs, AttnArgs, ...) are internal, so that assembly must be allowed to see them.
[assembly: System.Runtime.CompilerServices.InternalsVisibleTo("ILGPURuntime")]
