// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.30;

/// @notice Three consumer patterns found in production, each reading FeedAdapter over a live hub (the
///         fixture's OracleHub, fed by quorum-signed batches) through Chainlink's published interfaces:
///         a lending protocol's per-asset `latestAnswer` oracle with a fallback (Aave), a stablecoin's
///         two-round validating price feed (Liquity v1), and a staleness-checking library (OracleLib).
///         Each is tested on its happy path and on every failure mode the live hub can produce.

import {
    AggregatorV3Interface
} from "@chainlink/contracts/src/v0.8/shared/interfaces/AggregatorV3Interface.sol";
import {HubFixture} from "./utils/HubFixture.sol";
import {FeedAdapter} from "../src/FeedAdapter.sol";
import {AaveStyleOracle, ManualPriceOracle, IPriceOracleGetter} from "./consumers/AaveStyleOracle.sol";
import {LiquityStylePriceFeed} from "./consumers/LiquityStylePriceFeed.sol";
import {OracleLib, CollateralValuer} from "./consumers/OracleLib.sol";

abstract contract ConsumerFixture is HubFixture {
    FeedAdapter internal btcFeed;
    FeedAdapter internal ethFeed;

    function setUp() public virtual override {
        super.setUp();
        btcFeed = new FeedAdapter(hub, BTC);
        ethFeed = new FeedAdapter(hub, ETH);
    }

    /// @dev Pushes the next round of a feed, observed `age` seconds ago, as the aggregator would.
    function _push(uint16 index, bytes32 feed, int128 price, uint32 age) internal {
        _submit(_one(index, uint32(_round(feed) + 1), price, _now() - age));
    }
}

/// @notice (a) Aave v2/v3 `AaveOracle` style: `latestAnswer() > 0` or the fallback oracle.
contract AaveStyleOracleTest is ConsumerFixture {
    address internal constant WBTC = address(0xB7C);
    address internal constant WETH = address(0xE7E);
    address internal constant USDC = address(0x05DC);
    address internal constant LINK = address(0x11F);
    uint256 internal constant USD_UNIT = 1e8;

    AaveStyleOracle internal oracle;
    ManualPriceOracle internal fallbackOracle;

    function setUp() public override {
        super.setUp();
        fallbackOracle = new ManualPriceOracle();
        fallbackOracle.setAssetPrice(WBTC, 90_000e8);
        fallbackOracle.setAssetPrice(WETH, 2_900e8);
        fallbackOracle.setAssetPrice(LINK, 15e8);
        oracle = new AaveStyleOracle(USDC, USD_UNIT, IPriceOracleGetter(address(fallbackOracle)));
        address[] memory assets = new address[](2);
        address[] memory sources = new address[](2);
        (assets[0], sources[0]) = (WBTC, address(btcFeed));
        (assets[1], sources[1]) = (WETH, address(ethFeed));
        oracle.setAssetSources(assets, sources);
    }

    function test_PricesEachAssetFromItsFeed() public {
        _push(BTC_I, BTC, 97_123_45000000, 2);
        _push(ETH_I, ETH, 3_210_50000000, 3);
        address[] memory assets = new address[](3);
        (assets[0], assets[1], assets[2]) = (WBTC, WETH, USDC);
        uint256[] memory prices = oracle.getAssetsPrices(assets);
        vm.assertEq(prices[0], 97_123_45000000);
        vm.assertEq(prices[1], 3_210_50000000);
        vm.assertEq(prices[2], USD_UNIT);
        // It follows the hub round by round.
        _push(BTC_I, BTC, 98_000e8, 1);
        vm.assertEq(oracle.getAssetPrice(WBTC), 98_000e8);
    }

    /// @dev A feed without data answers latestAnswer() = 0, and the oracle turns to its fallback.
    function test_NoDataFallsBackToFallbackOracle() public {
        _push(BTC_I, BTC, 97_000e8, 0);
        vm.assertEq(ethFeed.latestAnswer(), 0);
        vm.assertEq(oracle.getAssetPrice(WETH), 2_900e8);
        vm.assertEq(oracle.getAssetPrice(WBTC), 97_000e8);
        // Once the feed has a value, the feed wins.
        _push(ETH_I, ETH, 3_000e8, 0);
        vm.assertEq(oracle.getAssetPrice(WETH), 3_000e8);
    }

    function test_AssetWithoutSourceUsesFallback() public view {
        vm.assertEq(oracle.getSourceOfAsset(LINK), address(0));
        vm.assertEq(oracle.getAssetPrice(LINK), 15e8);
    }

    /// @dev What the pattern does not check: latestAnswer() carries no timestamp, so a value the hub
    ///      stopped updating (a paused feed here) keeps being served. Consumers that need freshness use
    ///      latestTimestamp() or latestRoundData(), as the next two patterns do.
    function test_StaleValueIsStillServed() public {
        _push(BTC_I, BTC, 97_000e8, 0);
        vm.prank(OWNER);
        hub.setFeedPaused(BTC, true);
        vm.warp(block.timestamp + 3 days);
        vm.assertEq(oracle.getAssetPrice(WBTC), 97_000e8);
        vm.assertEq(btcFeed.latestTimestamp(), block.timestamp - 3 days);
    }
}

/// @notice (b) Liquity v1 `PriceFeed` style: current and previous round validated, frozen on a >50% move.
contract LiquityStylePriceFeedTest is ConsumerFixture {
    LiquityStylePriceFeed internal priceFeed;

    function _deploy() internal {
        priceFeed = new LiquityStylePriceFeed(AggregatorV3Interface(address(ethFeed)));
    }

    function _twoRounds() internal {
        _push(ETH_I, ETH, 3_000e8, 5);
        vm.warp(block.timestamp + 60);
        _push(ETH_I, ETH, 3_050e8, 5);
        _deploy();
    }

    function test_DeploysAndFetchesFromTwoValidRounds() public {
        _twoRounds();
        vm.assertEq(priceFeed.lastGoodPrice(), 3_050e18);
        vm.warp(block.timestamp + 60);
        _push(ETH_I, ETH, 3_100_12345678, 2);
        vm.assertEq(priceFeed.fetchPrice(), 3_100_123456780000000000);
        vm.assertEq(priceFeed.lastGoodPrice(), 3_100_123456780000000000);
        vm.assertEq(uint256(priceFeed.status()), uint256(LiquityStylePriceFeed.Status.oracleWorking));
    }

    /// @dev No data: latestRoundData reverts, which the pattern catches as a broken oracle.
    function test_RevertIf_DeployedOnFeedWithoutData() public {
        vm.expectRevert(LiquityStylePriceFeed.OracleNotWorkingAtDeployment.selector);
        _deploy();
    }

    /// @dev One round only: getRoundData(0) reverts, so there is no valid previous round.
    function test_RevertIf_DeployedWithoutPreviousRound() public {
        _push(ETH_I, ETH, 3_000e8, 0);
        vm.expectRevert(LiquityStylePriceFeed.OracleNotWorkingAtDeployment.selector);
        _deploy();
    }

    function test_FreezesWhenPriceMovedMoreThanHalfBetweenRounds() public {
        _twoRounds();
        vm.warp(block.timestamp + 60);
        // 3,050 -> 1,500: a 50.8% drop between the two rounds the feed reads.
        _push(ETH_I, ETH, 1_500e8, 1);
        vm.expectEmit(false, false, false, true, address(priceFeed));
        emit LiquityStylePriceFeed.PriceFeedStatusChanged(LiquityStylePriceFeed.Status.oracleUntrusted);
        vm.assertEq(priceFeed.fetchPrice(), 3_050e18);
        vm.assertEq(uint256(priceFeed.status()), uint256(LiquityStylePriceFeed.Status.oracleUntrusted));
        // The next round confirms the new level (a small move from the last): trusted again.
        vm.warp(block.timestamp + 60);
        _push(ETH_I, ETH, 1_510e8, 1);
        vm.assertEq(priceFeed.fetchPrice(), 1_510e18);
        vm.assertEq(uint256(priceFeed.status()), uint256(LiquityStylePriceFeed.Status.oracleWorking));
    }

    function test_HalfMoveExactlyIsAccepted() public {
        _twoRounds();
        vm.warp(block.timestamp + 60);
        _push(ETH_I, ETH, 1_525e8, 1); // exactly 50% below 3,050
        vm.assertEq(priceFeed.fetchPrice(), 1_525e18);
    }

    function test_FreezesWhenFeedIsOlderThanTimeout() public {
        _twoRounds();
        vm.warp(block.timestamp + priceFeed.TIMEOUT());
        vm.assertEq(priceFeed.fetchPrice(), 3_050e18);
        vm.assertEq(uint256(priceFeed.status()), uint256(LiquityStylePriceFeed.Status.oracleWorking));
        vm.warp(block.timestamp + 1);
        vm.assertEq(priceFeed.fetchPrice(), 3_050e18);
        vm.assertEq(uint256(priceFeed.status()), uint256(LiquityStylePriceFeed.Status.oracleUntrusted));
        // A fresh push brings it back.
        _push(ETH_I, ETH, 3_060e8, 0);
        vm.assertEq(priceFeed.fetchPrice(), 3_060e18);
        vm.assertEq(uint256(priceFeed.status()), uint256(LiquityStylePriceFeed.Status.oracleWorking));
    }

    /// @dev A timestamp ahead of the block is invalid: seen from a block dated before the update.
    function test_FreezesWhenTimestampIsInTheFuture() public {
        _twoRounds();
        vm.warp(block.timestamp - 1);
        vm.assertEq(priceFeed.fetchPrice(), 3_050e18);
        vm.assertEq(uint256(priceFeed.status()), uint256(LiquityStylePriceFeed.Status.oracleUntrusted));
    }
}

/// @notice (c) "OracleLib" style: `staleCheckLatestRoundData` reverts past a timeout.
contract OracleLibTest is ConsumerFixture {
    CollateralValuer internal valuer;

    function setUp() public override {
        super.setUp();
        valuer = new CollateralValuer(AggregatorV3Interface(address(ethFeed)));
    }

    function test_ValuesCollateralAtFreshPrice() public {
        _push(ETH_I, ETH, 3_000e8, 4);
        vm.assertEq(valuer.getUsdValue(2e18), 6_000e18);
    }

    function test_RevertIf_PriceOlderThanTimeout() public {
        _push(ETH_I, ETH, 3_000e8, 4);
        uint256 updatedAt = block.timestamp;
        vm.warp(updatedAt + 3 hours);
        vm.assertEq(valuer.getUsdValue(1e18), 3_000e18); // at the timeout: still fine
        vm.warp(updatedAt + 3 hours + 1);
        vm.expectRevert(abi.encodeWithSelector(OracleLib.OracleLib__StalePrice.selector, updatedAt, 3 hours));
        valuer.getUsdValue(1e18);
        // The aggregator's next push (heartbeat) clears it.
        _push(ETH_I, ETH, 3_100e8, 1);
        vm.assertEq(valuer.getUsdValue(1e18), 3_100e18);
    }

    /// @dev No data: the adapter's revert passes through the library unchanged.
    function test_RevertIf_NoData() public {
        vm.expectRevert(FeedAdapter.NoDataPresent.selector);
        valuer.getUsdValue(1e18);
    }
}
