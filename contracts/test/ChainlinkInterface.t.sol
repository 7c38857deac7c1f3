// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @notice FeedAdapter against the interface Chainlink publishes (npm @chainlink/contracts, the exact
///         version pinned in package.json): every function selector of Chainlink's
///         AggregatorV2V3Interface equals ours and the adapter's, their XOR (the ERC-165 interface id
///         of the whole) matches, the events match, and the adapter answers through Chainlink's type.

import {
    AggregatorV2V3Interface as ClV2V3
} from "@chainlink/contracts/src/v0.8/shared/interfaces/AggregatorV2V3Interface.sol";
import {
    AggregatorInterface as ClV2
} from "@chainlink/contracts/src/v0.8/shared/interfaces/AggregatorInterface.sol";
import {
    AggregatorV3Interface as ClV3
} from "@chainlink/contracts/src/v0.8/shared/interfaces/AggregatorV3Interface.sol";
import {HubFixture} from "./utils/HubFixture.sol";
import {FeedAdapter} from "../src/FeedAdapter.sol";
import {AggregatorInterface} from "../src/interfaces/AggregatorInterface.sol";
import {AggregatorV3Interface} from "../src/interfaces/AggregatorV3Interface.sol";
import {AggregatorV2V3Interface} from "../src/interfaces/AggregatorV2V3Interface.sol";

contract ChainlinkInterfaceTest is HubFixture {
    uint256 internal constant FUNCTIONS = 10;

    FeedAdapter internal adapter;
    ClV2V3 internal feed;

    function setUp() public override {
        super.setUp();
        adapter = new FeedAdapter(hub, BTC);
        feed = ClV2V3(address(adapter));
    }

    /// @dev Every function of Chainlink's AggregatorV2V3Interface (its own body is empty; these are the
    ///      five of AggregatorInterface and the five of AggregatorV3Interface), as the signature text,
    ///      Chainlink's selector, ours and the adapter's. Inherited functions are not members of an
    ///      interface's type name, so the V2V3 selectors are taken from an instance of each type.
    function _table()
        internal
        pure
        returns (
            string[FUNCTIONS] memory signature,
            bytes4[FUNCTIONS] memory chainlink,
            bytes4[FUNCTIONS] memory ours,
            bytes4[FUNCTIONS] memory adapter_
        )
    {
        signature = [
            "latestAnswer()",
            "latestTimestamp()",
            "latestRound()",
            "getAnswer(uint256)",
            "getTimestamp(uint256)",
            "decimals()",
            "description()",
            "version()",
            "getRoundData(uint80)",
            "latestRoundData()"
        ];
        chainlink = [
            ClV2V3(address(0)).latestAnswer.selector,
            ClV2V3(address(0)).latestTimestamp.selector,
            ClV2V3(address(0)).latestRound.selector,
            ClV2V3(address(0)).getAnswer.selector,
            ClV2V3(address(0)).getTimestamp.selector,
            ClV2V3(address(0)).decimals.selector,
            ClV2V3(address(0)).description.selector,
            ClV2V3(address(0)).version.selector,
            ClV2V3(address(0)).getRoundData.selector,
            ClV2V3(address(0)).latestRoundData.selector
        ];
        ours = [
            AggregatorV2V3Interface(address(0)).latestAnswer.selector,
            AggregatorV2V3Interface(address(0)).latestTimestamp.selector,
            AggregatorV2V3Interface(address(0)).latestRound.selector,
            AggregatorV2V3Interface(address(0)).getAnswer.selector,
            AggregatorV2V3Interface(address(0)).getTimestamp.selector,
            AggregatorV2V3Interface(address(0)).decimals.selector,
            AggregatorV2V3Interface(address(0)).description.selector,
            AggregatorV2V3Interface(address(0)).version.selector,
            AggregatorV2V3Interface(address(0)).getRoundData.selector,
            AggregatorV2V3Interface(address(0)).latestRoundData.selector
        ];
        adapter_ = [
            FeedAdapter.latestAnswer.selector,
            FeedAdapter.latestTimestamp.selector,
            FeedAdapter.latestRound.selector,
            FeedAdapter.getAnswer.selector,
            FeedAdapter.getTimestamp.selector,
            FeedAdapter.decimals.selector,
            FeedAdapter.description.selector,
            FeedAdapter.version.selector,
            FeedAdapter.getRoundData.selector,
            FeedAdapter.latestRoundData.selector
        ];
    }

    function test_EverySelectorMatchesChainlinks() public {
        (
            string[FUNCTIONS] memory signature,
            bytes4[FUNCTIONS] memory chainlink,
            bytes4[FUNCTIONS] memory ours,
            bytes4[FUNCTIONS] memory adapter_
        ) = _table();
        for (uint256 i = 0; i < FUNCTIONS; ++i) {
            emit log_named_bytes32(signature[i], chainlink[i]);
            vm.assertEq(bytes32(chainlink[i]), bytes32(bytes4(keccak256(bytes(signature[i])))));
            vm.assertEq(bytes32(ours[i]), bytes32(chainlink[i]));
            vm.assertEq(bytes32(adapter_[i]), bytes32(chainlink[i]));
        }
    }

    /// @dev The XOR of all ten selectors, as ERC-165 defines an interface id. Solidity's
    ///      `type(I).interfaceId` leaves inherited functions out (so it is 0 for both V2V3 interfaces,
    ///      which declare nothing themselves), hence the two parents' ids: since the compiler computes
    ///      those over every function they declare, a function missing from the table above would show
    ///      here.
    function test_InterfaceIdMatchesChainlinks() public {
        (
            ,
            bytes4[FUNCTIONS] memory chainlink,
            bytes4[FUNCTIONS] memory ours,
            bytes4[FUNCTIONS] memory adapter_
        ) = _table();
        bytes4 xorChainlink;
        bytes4 xorOurs;
        bytes4 xorAdapter;
        for (uint256 i = 0; i < FUNCTIONS; ++i) {
            xorChainlink ^= chainlink[i];
            xorOurs ^= ours[i];
            xorAdapter ^= adapter_[i];
        }
        bytes4 whole = type(ClV2).interfaceId ^ type(ClV3).interfaceId;
        emit log_named_bytes32("XOR of all ten selectors", whole);
        vm.assertEq(bytes32(xorChainlink), bytes32(whole));
        vm.assertEq(bytes32(xorOurs), bytes32(whole));
        vm.assertEq(bytes32(xorAdapter), bytes32(whole));
        vm.assertEq(
            bytes32(type(AggregatorInterface).interfaceId ^ type(AggregatorV3Interface).interfaceId),
            bytes32(whole)
        );
        vm.assertEq(bytes32(type(AggregatorInterface).interfaceId), bytes32(type(ClV2).interfaceId));
        vm.assertEq(bytes32(type(AggregatorV3Interface).interfaceId), bytes32(type(ClV3).interfaceId));
        vm.assertEq(bytes32(type(ClV2V3).interfaceId), bytes32(0));
        vm.assertEq(bytes32(type(AggregatorV2V3Interface).interfaceId), bytes32(0));
    }

    function test_EventsMatchChainlinks() public pure {
        vm.assertEq(ClV2.AnswerUpdated.selector, AggregatorInterface.AnswerUpdated.selector);
        vm.assertEq(ClV2.NewRound.selector, AggregatorInterface.NewRound.selector);
        vm.assertEq(ClV2.AnswerUpdated.selector, keccak256("AnswerUpdated(int256,uint256,uint256)"));
        vm.assertEq(ClV2.NewRound.selector, keccak256("NewRound(uint256,address,uint256)"));
    }

    function test_AdapterAnswersThroughChainlinksInterface() public {
        // No data: the legacy getters answer 0, the V3 reads revert.
        vm.assertEq(feed.latestAnswer(), 0);
        vm.assertEq(feed.latestTimestamp(), 0);
        vm.assertEq(feed.latestRound(), 0);
        vm.assertEq(feed.getAnswer(1), 0);
        vm.assertEq(feed.getTimestamp(1), 0);
        vm.expectRevert(FeedAdapter.NoDataPresent.selector);
        feed.latestRoundData();

        uint32 firstAt = _now();
        _submit(_one(BTC_I, 1, 96_500e8, firstAt - 3));
        vm.warp(block.timestamp + 30);
        _submit(_one(BTC_I, 2, 97_250e8, _now() - 2));

        vm.assertEq(uint256(feed.decimals()), 8);
        vm.assertEq(feed.description(), "BTC / USD");
        vm.assertEq(feed.version(), 1);
        vm.assertEq(feed.latestAnswer(), 97_250e8);
        vm.assertEq(feed.latestTimestamp(), block.timestamp);
        vm.assertEq(feed.latestRound(), 2);
        vm.assertEq(feed.getAnswer(1), 96_500e8);
        vm.assertEq(feed.getTimestamp(1), firstAt);
        (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound) =
            feed.latestRoundData();
        vm.assertEq(uint256(roundId), 2);
        vm.assertEq(answer, 97_250e8);
        vm.assertEq(startedAt, block.timestamp - 2);
        vm.assertEq(updatedAt, block.timestamp);
        vm.assertEq(uint256(answeredInRound), 2);
        (roundId, answer, startedAt, updatedAt, answeredInRound) = feed.getRoundData(1);
        vm.assertEq(uint256(roundId), 1);
        vm.assertEq(answer, 96_500e8);
        vm.assertEq(startedAt, firstAt - 3);
        vm.assertEq(updatedAt, firstAt);
        vm.assertEq(uint256(answeredInRound), 1);
    }
}
