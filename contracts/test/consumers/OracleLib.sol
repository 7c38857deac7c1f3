// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {
    AggregatorV3Interface
} from "@chainlink/contracts/src/v0.8/shared/interfaces/AggregatorV3Interface.sol";

/// @notice Test fixture mimicking the widely used "OracleLib" staleness check (as in many
///         Foundry-course stablecoin engines): `staleCheckLatestRoundData` is `latestRoundData` that
///         reverts when the answer was updated more than `TIMEOUT` ago (or never, or in an older round
///         than the latest), so that the protocol freezes rather than use a stale price. Written for
///         these tests, after the pattern; not copied code.
library OracleLib {
    uint256 internal constant TIMEOUT = 3 hours;

    error OracleLib__StalePrice(uint256 updatedAt, uint256 timeout);

    function staleCheckLatestRoundData(AggregatorV3Interface feed)
        internal
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        (roundId, answer, startedAt, updatedAt, answeredInRound) = feed.latestRoundData();
        if (updatedAt == 0 || answeredInRound < roundId) revert OracleLib__StalePrice(updatedAt, TIMEOUT);
        if (block.timestamp - updatedAt > TIMEOUT) revert OracleLib__StalePrice(updatedAt, TIMEOUT);
    }
}

/// @notice A collateral valuation as such engines write it (`getUsdValue`): the token amount (18
///         decimals) times the feed's price, in USD with 18 decimals, through OracleLib.
contract CollateralValuer {
    using OracleLib for AggregatorV3Interface;

    uint256 private constant PRECISION = 1e18;
    AggregatorV3Interface public immutable priceFeed;

    constructor(AggregatorV3Interface priceFeed_) {
        priceFeed = priceFeed_;
    }

    function getUsdValue(uint256 amount) external view returns (uint256) {
        (, int256 price,,,) = priceFeed.staleCheckLatestRoundData();
        return uint256(price) * 10 ** (18 - priceFeed.decimals()) * amount / PRECISION;
    }
}
