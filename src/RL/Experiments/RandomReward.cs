// Source: the random-reward control of "Spurious Rewards: Rethinking Training Signals in RLVR" (arXiv:2506.10947).
namespace NativeReasoner.RL.Experiments;

/// <summary>
/// A control reward that carries no information about correctness: 1 with probability <paramref name="p"/>, else 0,
/// drawn by hashing (seed, prompt, completion). A hash rather than a random stream, because the trainer scores a
/// batch more than once (sampling and statistics) and must see the same value each time; a completion sampled twice
/// gets the same reward, which makes it a fixed random function of the text rather than independent noise.
/// </summary>
public sealed class RandomReward(ulong seed, double p = 0.5) : IRewardFunction
{
    public string Name => "random";

    public float? Score(RewardInput input)
    {
        ulong h = Mix(seed ^ 0xC0FFEE1234567UL);
        h = Mix(h ^ Fnv(input.Problem.Prompt));
        h = Mix(h ^ Fnv(input.Completion));
        // The top 53 bits as a uniform double in [0, 1).
        double u = (h >> 11) * (1.0 / (1UL << 53));
        return u < p ? 1f : 0f;
    }

    private static ulong Fnv(string text)
    {
        ulong h = 0xCBF29CE484222325UL;
        foreach (char c in text)
        {
            h ^= c;
            h *= 0x100000001B3UL;
        }
        return h;
    }

    // SplitMix64's finaliser: spreads every input bit over the output.
    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
