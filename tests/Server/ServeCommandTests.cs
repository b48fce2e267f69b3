using NativeReasoner.Cli;
using Xunit;

namespace NativeReasoner.Tests.Server;

/// <summary><c>nr serve</c> refuses what it cannot serve with a message, not a stack trace.</summary>
public class ServeCommandTests
{
    [Fact]
    public void Serve_FailsClearly_OnAMissingModel_OrABadHost()
    {
        var error = new StringWriter();
        var saved = Console.Error;
        Console.SetError(error);
        try
        {
            Assert.Equal(1, Program.Main(["serve", "--model", "/nonexistent/model-dir", "--port", "0"]));
            Assert.Contains("nr serve:", error.ToString());
            Assert.Contains("/nonexistent/model-dir", error.ToString());
            Assert.DoesNotContain("   at ", error.ToString());
        }
        finally { Console.SetError(saved); }
    }
}

/// <summary><c>nr bench serve</c> on a small load: the report has every row, and greedy answers agree.</summary>
public class BenchServeTests
{
    [Fact]
    public void BenchServe_WritesTheReport()
    {
        var report = Path.Combine(Path.GetTempPath(), "nr-bench-serve-" + Guid.NewGuid().ToString("N") + ".md");
        try
        {
            Assert.Equal(0, Program.Main(["bench", "serve", "--concurrency", "1,2", "--requests-per-client", "2",
                "--max-tokens", "4", "--long-requests", "8", "--long-clients", "4", "--out", report]));
            var text = File.ReadAllText(report);
            Assert.Contains("| 1 | 2 |", text);
            Assert.Contains("| 2 | 4 |", text);
            Assert.Contains("## Long run: 8 requests from 4 clients, 2 of them leaving after the first chunk", text);
            Assert.Contains("0 running, 0 queued", text);
            Assert.Contains("Greedy answers that differed, all runs: 0.", text);
            Assert.Equal(1, Program.Main(["bench", "serve", "--hang-up", "2"]));
        }
        finally { File.Delete(report); }
    }
}
