namespace Alignment.Annotation.Tests;

public sealed class AgreementTests
{
    [Fact]
    public void Cohens_kappa_matches_a_hand_computed_table()
    {
        // 10 items: both "a" on 4, both "b" on 3, first a / second b on 2, first b / second a on 1.
        var pairs = Enumerable.Repeat(("a", "a"), 4).Concat(Enumerable.Repeat(("b", "b"), 3))
            .Concat(Enumerable.Repeat(("a", "b"), 2)).Concat([("b", "a")]).ToList();
        // p_o = 0.7; first says a 6/10, second 5/10: p_e = 0.6·0.5 + 0.4·0.5 = 0.5; κ = 0.2 / 0.5 = 0.4.
        Assert.Equal(0.4, Agreement.CohensKappa(pairs), 12);
        Assert.Equal(1.0, Agreement.CohensKappa([("a", "a"), ("b", "b")]), 12);
        Assert.True(double.IsNaN(Agreement.CohensKappa([("a", "a"), ("a", "a")]))); // p_e = 1
        Assert.True(double.IsNaN(Agreement.CohensKappa([])));
    }

    [Fact]
    public void Fleiss_kappa_matches_a_hand_computed_table()
    {
        // Three items, three raters each: [a a a], [a a b], [b b tie].
        // P_i = 1, (2·1)/6 = 1/3, 1/3; P̄ = 5/9. Totals a 5, b 3, tie 1 of 9: P̄_e = (25 + 9 + 1)/81 = 35/81.
        // κ = (5/9 − 35/81) / (1 − 35/81) = (45 − 35)/(81 − 35) = 10/46.
        string[][] items = [["a", "a", "a"], ["a", "a", "b"], ["b", "b", "tie"]];
        Assert.Equal(10.0 / 46, Agreement.FleissKappa(items), 12);
        Assert.True(double.IsNaN(Agreement.FleissKappa([["a"]])));
    }

    [Theory]
    [InlineData("a,a,b", "a", 2.0 / 3)]
    [InlineData("b,tie,tie", "b", 1.0)]
    [InlineData("a,b,tie", null, 0.5)]
    public void The_majority_ignores_ties_as_the_voted_reader_does(string votes, string? majority, double agreement)
    {
        var (winner, share) = Agreement.Majority(votes.Split(','));
        Assert.Equal(majority, winner);
        Assert.Equal(agreement, share, 12);
    }
}
