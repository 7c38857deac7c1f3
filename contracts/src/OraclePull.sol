// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IOracleHub} from "./IOracleHub.sol";

/// @title OraclePull
/// @notice For consumers that pull: the caller brings the oracle's latest signed batch (the calldata
///         the bff's `GET /v1/reports/{pair}/latest` serves), the consumer hands it to the hub, which
///         verifies and stores it exactly as a push, and gets the feed's value back in the same call,
///         checked: the feed has a value and it is fresh enough.
/// @dev Freshness is measured on `observedAt`, the time the price was observed off-chain, not on the
///      hub's `updatedAt`: a value this call stored has `updatedAt` = now however old its observations
///      are (the hub only bounds that by the feed's `maxReportAge`), so `updatedAt` says nothing about a
///      pulled price. A batch the aggregator pushed already is skipped by the hub and the stored value
///      is checked the same way.
library OraclePull {
    /// @notice The feed's value was observed more than `maxAge` seconds before this block.
    error StaleReport(bytes32 feedId, uint256 observedAt, uint256 maxAge);

    /// @notice Applies a signed batch and reads one feed, reverting unless it has a value observed at
    ///         most `maxAge` seconds ago.
    /// @param hub        The hub.
    /// @param reports    Packed reports, as for `IOracleHub.submit`.
    /// @param signatures Packed signatures, as for `IOracleHub.submit`: any fault reverts.
    /// @param feedId     The feed to read (reverts with the hub's UnknownFeed, or NoData before its first
    ///                   value).
    /// @param maxAge     Seconds the value's observation may lie behind the block (an observation up to
    ///                   the hub's skew ahead of the block counts as age 0).
    /// @return price      Scaled by 10^decimals of the feed.
    /// @return observedAt Unix seconds of the observations behind the value.
    function updateAndRead(
        IOracleHub hub,
        bytes calldata reports,
        bytes calldata signatures,
        bytes32 feedId,
        uint256 maxAge
    ) internal returns (int256 price, uint256 observedAt) {
        (int128 p,, uint32 roundId, uint32 at,) = hub.updateAndRead(reports, signatures, feedId);
        if (roundId == 0) revert IOracleHub.NoData(feedId);
        if (at < block.timestamp && block.timestamp - at > maxAge) revert StaleReport(feedId, at, maxAge);
        return (p, at);
    }
}
