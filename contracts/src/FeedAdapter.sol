// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {AggregatorV3Interface} from "./interfaces/AggregatorV3Interface.sol";
import {IOracleHub} from "./IOracleHub.sol";

/// @title FeedAdapter
/// @notice One OracleHub feed behind Chainlink's AggregatorV3Interface, unchanged, so that existing
///         consumers work as they are. Field meanings follow Chainlink: `answer` is the price scaled by
///         `decimals()`, `startedAt` is the observation time, `updatedAt` the time the chain stored the
///         value, and `answeredInRound` equals `roundId`. Both reads revert when there is no data.
contract FeedAdapter is AggregatorV3Interface {
    /// @notice The hub holding the feed.
    IOracleHub public immutable hub;
    /// @notice The feed's id, keccak256 of the pair name.
    bytes32 public immutable feedId;
    /// @notice The feed's index in the hub.
    uint16 public immutable feedIndex;
    uint8 private immutable _decimals;
    string private _description;

    /// @notice There is no round with data for this request.
    error NoDataPresent();

    /// @param hub_    The hub.
    /// @param feedId_ A feed registered on the hub.
    constructor(IOracleHub hub_, bytes32 feedId_) {
        IOracleHub.FeedInfo memory info = hub_.feedInfo(feedId_);
        hub = hub_;
        feedId = feedId_;
        feedIndex = info.index;
        _decimals = info.decimals;
        _description = info.description;
    }

    /// @inheritdoc AggregatorV3Interface
    function decimals() external view returns (uint8) {
        return _decimals;
    }

    /// @inheritdoc AggregatorV3Interface
    function description() external view returns (string memory) {
        return _description;
    }

    /// @inheritdoc AggregatorV3Interface
    function version() external pure returns (uint256) {
        return 1;
    }

    /// @inheritdoc AggregatorV3Interface
    function getRoundData(uint80 roundId_)
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        if (roundId_ == 0 || roundId_ > type(uint32).max) revert NoDataPresent();
        (int128 price, uint32 observedAt, uint32 storedAt) = hub.roundByIndex(feedIndex, uint32(roundId_));
        return (roundId_, price, observedAt, storedAt, roundId_);
    }

    /// @inheritdoc AggregatorV3Interface
    function latestRoundData()
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        (uint32 round, int128 price, uint32 observedAt, uint32 storedAt) = hub.latestByIndex(feedIndex);
        if (round == 0) revert NoDataPresent();
        return (round, price, observedAt, storedAt, round);
    }
}
