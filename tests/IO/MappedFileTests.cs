using NativeReasoner.IO;
using Xunit;

namespace NativeReasoner.Tests.IO;

/// <summary>The shared checked mapping of the container readers: range arithmetic that cannot overflow, and
/// accesses outside the file refused.</summary>
public sealed class MappedFileTests
{
    [Theory]
    [InlineData(0L, 0L, 0L, true)]
    [InlineData(0L, 10L, 10L, true)]
    [InlineData(10L, 0L, 10L, true)]
    [InlineData(4L, 7L, 10L, false)]
    [InlineData(11L, 0L, 10L, false)]
    [InlineData(-1L, 1L, 10L, false)]
    [InlineData(1L, -1L, 10L, false)]
    [InlineData(long.MaxValue, long.MaxValue, long.MaxValue, false)]
    [InlineData(1L, long.MaxValue, long.MaxValue, false)]
    [InlineData(0L, 1L, -5L, false)]
    public void Fits_IsExactAndOverflowSafe(long offset, long length, long limit, bool fits) =>
        Assert.Equal(fits, MappedFile.Fits(offset, length, limit));

    [Fact]
    public unsafe void Accesses_OutsideTheFile_AreRefused()
    {
        string path = Path.Combine(Path.GetTempPath(), $"nr-mapped-{Guid.NewGuid():N}.bin");
        File.WriteAllBytes(path, [1, 2, 3, 4, 5, 6, 7, 8]);
        try
        {
            using (var file = MappedFile.Open(path, 4, n => new InvalidDataException($"{n} bytes"),
                       (m, e) => new InvalidDataException(m, e)))
            {
                Assert.Equal(8, file.Length);
                Assert.Equal(new byte[] { 3, 4, 5 }, file.Span(2, 3).ToArray());
                Assert.Equal(8, *file.Pointer(7, 1));
                Assert.Throws<ArgumentOutOfRangeException>(() => file.Span(6, 3).ToArray());
                Assert.Throws<ArgumentOutOfRangeException>(() => file.ReleasePages(-1, 2));
                file.ReleasePages(0, 8);
                Assert.Equal(1, file.Span(0, 1)[0]); // released pages read back from the file
            }
            var e = Assert.Throws<InvalidDataException>(() => MappedFile.Open(path, 16,
                n => new InvalidDataException($"{n} bytes"), (m, e) => new InvalidDataException(m, e)));
            Assert.Equal("8 bytes", e.Message);
            Assert.Throws<InvalidDataException>(() => MappedFile.Open(path + ".missing", 1,
                n => new InvalidDataException($"{n} bytes"), (m, e) => new InvalidDataException(m, e)));
        }
        finally { File.Delete(path); }
    }
}
