// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

import {HubFixture} from "./utils/HubFixture.sol";
import {IOracleHub} from "../src/IOracleHub.sol";
import {FeedAdapter} from "../src/FeedAdapter.sol";
import {AggregatorV3Interface} from "../src/interfaces/AggregatorV3Interface.sol";

/// @notice A consumer as existing protocols write them: it knows only Chainlink's interface. It
///         returns the price with 18 decimals and refuses stale or non-positive answers.
contract ChainlinkConsumer {
    AggregatorV3Interface public immutable feed;
    uint256 public immutable maxAge;

    error Stale(uint256 updatedAt);
    error BadAnswer(int256 answer);

    constructor(AggregatorV3Interface feed_, uint256 maxAge_) {
        feed = feed_;
        maxAge = maxAge_;
    }

    function price18() external view returns (uint256) {
        (uint80 roundId, int256 answer,, uint256 updatedAt, uint80 answeredInRound) = feed.latestRoundData();
        if (answer <= 0) revert BadAnswer(answer);
        if (answeredInRound < roundId || block.timestamp - updatedAt > maxAge) revert Stale(updatedAt);
        return uint256(answer) * 10 ** (18 - feed.decimals());
    }
}

/// @notice FeedAdapter: Chainlink's interface over a hub feed, field by field.
contract FeedAdapterTest is HubFixture {
    FeedAdapter internal adapter;
    ChainlinkConsumer internal consumer;

    function setUp() public override {
        super.setUp();
        adapter = new FeedAdapter(hub, BTC);
        consumer = new ChainlinkConsumer(AggregatorV3Interface(address(adapter)), 3600);
    }

    function test_Metadata() public view {
        vm.assertEq(uint256(adapter.decimals()), 8);
        vm.assertEq(adapter.description(), "BTC / USD");
        vm.assertEq(adapter.version(), 1);
        vm.assertEq(adapter.feedId(), BTC);
        vm.assertEq(uint256(adapter.feedIndex()), BTC_I);
        vm.assertEq(address(adapter.hub()), address(hub));
    }

    function test_LatestRoundDataFieldMeanings() public {
        uint32 observed = _now() - 5;
        // Rounds are consecutive: start the feed at round 41 so that roundId (42) differs from every
        // other field.
        _forceRound(BTC_I, 41, observed - 10);
        _submit(_one(BTC_I, 42, 97_000e8, observed));
        vm.warp(block.timestamp + 7);
        (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound) =
            adapter.latestRoundData();
        vm.assertEq(uint256(roundId), 42);
        vm.assertEq(answer, 97_000e8);
        vm.assertEq(startedAt, observed); // observation time
        vm.assertEq(updatedAt, block.timestamp - 7); // when the chain stored it
        vm.assertEq(uint256(answeredInRound), 42);
    }

    function test_GetRoundDataOfPastRounds() public {
        _submit(_one(BTC_I, 1, 96_000e8, _now()));
        _submit(_one(BTC_I, 2, 97_000e8, _now()));
        (uint80 roundId, int256 answer,,, uint80 answeredInRound) = adapter.getRoundData(1);
        vm.assertEq(uint256(roundId), 1);
        vm.assertEq(answer, 96_000e8);
        vm.assertEq(uint256(answeredInRound), 1);
    }

    function test_RevertIf_NoDataPresent() public {
        vm.expectRevert(FeedAdapter.NoDataPresent.selector);
        adapter.latestRoundData();
        vm.expectRevert(FeedAdapter.NoDataPresent.selector);
        adapter.getRoundData(0);
        vm.expectRevert(FeedAdapter.NoDataPresent.selector);
        adapter.getRoundData(uint80(type(uint32).max) + 1);
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.RoundNotAvailable.selector, BTC, 3, 0));
        adapter.getRoundData(3);
    }

    function test_RevertIf_AdapterForUnknownFeed() public {
        bytes32 x = keccak256("X/Y");
        vm.expectRevert(abi.encodeWithSelector(IOracleHub.UnknownFeed.selector, x));
        new FeedAdapter(hub, x);
    }

    function test_ConsumerReadsThroughChainlinkInterface() public {
        _submit(_one(BTC_I, 1, 97_123_45000000, _now()));
        vm.assertEq(consumer.price18(), 97_123_450000000000000000);
        // The consumer's own staleness rule works on updatedAt as with Chainlink.
        vm.warp(block.timestamp + 3601);
        vm.expectRevert(abi.encodeWithSelector(ChainlinkConsumer.Stale.selector, block.timestamp - 3601));
        consumer.price18();
    }

    function test_ConsumerSeesNoDataAsRevert() public {
        vm.expectRevert(FeedAdapter.NoDataPresent.selector);
        consumer.price18();
    }

    function test_AdapterFollowsEveryUpdate() public {
        for (uint32 r = 1; r <= 5; ++r) {
            _submit(_one(BTC_I, r, int128(int256(uint256(96_000e8 + r))), _now()));
            (uint80 roundId, int256 answer,,,) = adapter.latestRoundData();
            vm.assertEq(uint256(roundId), r);
            vm.assertEq(answer, int256(uint256(96_000e8 + r)));
        }
    }
}
